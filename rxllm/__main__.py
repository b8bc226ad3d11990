"""`python -m rxllm`: the same command line as the `rxllm` program (see `rxllm.cli`)."""

import sys

from rxllm.cli import main

sys.exit(main())
