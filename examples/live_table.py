"""Structured output into a live table: rows appear and fill in while the JSON streams.

Shows `ops.partial(Model)`: the model answers in JSON (`response_format=Model`), and every
time the JSON so far adds a value, a partially filled `Model` comes out — a list of rows
whose last row may still lack fields (`None`) — then the fully validated `Model` last. On a
terminal the table is redrawn in place; otherwise each update is printed as one line.

Run:  python examples/live_table.py
"""

from __future__ import annotations

import json
import sys

from pydantic import BaseModel

import rxllm
from rxllm import ops


class Planet(BaseModel):
    name: str
    moons: int
    gas_giant: bool


class Planets(BaseModel):
    planets: list[Planet]


DATA = {
    "planets": [
        {"name": "Mercury", "moons": 0, "gas_giant": False},
        {"name": "Venus", "moons": 0, "gas_giant": False},
        {"name": "Earth", "moons": 1, "gas_giant": False},
        {"name": "Mars", "moons": 2, "gas_giant": False},
        {"name": "Jupiter", "moons": 95, "gas_giant": True},
        {"name": "Saturn", "moons": 146, "gas_giant": True},
    ]
}


def pieces(text: str, size: int = 7) -> list[str]:
    """The JSON in small pieces, as a provider streams it."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def table(value: Planets) -> list[str]:
    lines = [f"{'planet':10} {'moons':>5}  gas giant", "-" * 28]
    for planet in value.planets or []:
        moons = "…" if planet.moons is None else str(planet.moons)
        giant = "…" if planet.gas_giant is None else ("yes" if planet.gas_giant else "no")
        lines.append(f"{planet.name or '…':10} {moons:>5}  {giant}")
    return lines


def main() -> None:
    llm = rxllm.scripted(pieces(json.dumps(DATA)), delay=0.01)
    stream = llm.stream("The planets up to Saturn, with moons.", response_format=Planets)
    live = sys.stdout.isatty()
    drawn = 0
    updates = 0
    final: Planets | None = None
    for value in rxllm.iterate(stream.pipe(ops.partial(Planets))):
        updates += 1
        final = value
        lines = table(value)
        if live:
            sys.stdout.write(f"\x1b[{drawn}F" if drawn else "")
            sys.stdout.write("".join(f"\x1b[2K{line}\n" for line in lines))
            sys.stdout.flush()
            drawn = len(lines)
        else:
            last = value.planets[-1] if value.planets else None
            print(f"update {updates:2}: {len(value.planets or [])} rows, last row {last!r}")
    assert final is not None
    print(f"\n{type(final).__name__} after {updates} updates:" if not live else "")
    if not live:
        print("\n".join(table(final)))


if __name__ == "__main__":
    main()
