"""`python -m benchmarks.reliability`: see `benchmarks.reliability.run`."""

import sys

from benchmarks.reliability.run import main

if __name__ == "__main__":  # the leak section's server is a spawned child: it imports this
    sys.exit(main())
