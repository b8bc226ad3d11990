"""Run the sections and write the report; exit status 1 when any promise was broken."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.reliability import faults, fuzz, keys, leaks, storm
from benchmarks.reliability.common import Section
from benchmarks.reliability.report import write

__all__ = ["SECTIONS", "main", "run"]

SECTIONS: dict[str, Callable[..., Section]] = {
    "faults": faults.run,
    "leaks": leaks.run,
    "fuzz": fuzz.run,
    "storm": storm.run,
    "secrets": keys.run,
}
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"


def run(*, small: bool, only: list[str] | None = None, out: Path | None = None) -> list[Section]:
    """Run the sections (`only` some of them) at the small or full size; write `out`."""
    names = only or list(SECTIONS)
    unknown = [name for name in names if name not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown sections {unknown}: choose among {', '.join(SECTIONS)}")
    start = time.perf_counter()
    sections = []
    for name in names:
        began = time.perf_counter()
        print(f"[reliability] {name} ...", file=sys.stderr, flush=True)
        section = SECTIONS[name](small=small)
        print(
            f"[reliability] {name}: {len(section.problems)} problems "
            f"({time.perf_counter() - began:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
        for problem in section.problems[:20]:
            print(f"    {problem.splitlines()[0]}", file=sys.stderr)
        sections.append(section)
    if out is not None:
        command = "python -m benchmarks.reliability" + (" --small" if small else "")
        write(out, sections, small=small, seconds=time.perf_counter() - start, command=command)
    return sections


def main(argv: list[str] | None = None) -> int:
    """The command line: `python -m benchmarks.reliability [--small] [--only a,b] [--out P]`."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reliability", description=__doc__)
    parser.add_argument("--small", action="store_true", help="the CI size (a few minutes)")
    parser.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the report to write")
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",")] if args.only else None
    sections = run(small=args.small, only=only, out=args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 1 if any(section.problems for section in sections) else 0
