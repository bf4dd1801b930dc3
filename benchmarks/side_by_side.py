"""Run one benchmark in this tree and in another checkout, alternating fresh processes, and compare.

Each round runs both trees' script one after the other, so a noisy neighbour slows both alike; the
figure each run prints is read with a regular expression and the medians over the rounds compared.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Figure:
    """The number a benchmark prints, and which way is better."""

    name: str  # e.g. "CPU ms per digest"
    pattern: re.Pattern[str]  # its first group is the number
    higher_is_better: bool


def compare(script: str, args: list[str], other: Path, rounds: int, figure: Figure, tolerance: float) -> int:
    """Print both trees' medians and their ratio; 0 if this tree is at most ``tolerance`` worse."""
    trees = {"this": REPO_ROOT, "other": other.resolve()}
    figures: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(rounds):
        for name, tree in trees.items():
            command = [sys.executable, str(tree / "benchmarks" / script), *args]
            out = subprocess.run(command, cwd=tree, capture_output=True, text=True, check=False).stdout
            found = figure.pattern.search(out)
            if found is None:
                print(f"no {figure.name} in the output of {tree}:\n{out}", file=sys.stderr)
                return 2
            figures[name].append(float(found[1]))
    print(f"{script} {' '.join(args)} side by side: {rounds} alternating rounds, {figure.name}")
    for name, tree in trees.items():
        each = ", ".join(f"{value:g}" for value in figures[name])
        print(f"  {name:5} {tree}: median {statistics.median(figures[name]):g} ({each})")
    this, that = statistics.median(figures["this"]), statistics.median(figures["other"])
    worse_by = that / this if figure.higher_is_better else this / that
    verdict = "met" if worse_by <= tolerance else "MISSED"
    print(f"  this is {worse_by:.3f}x the other's cost (target <= {tolerance}x): {verdict}")
    return 0 if worse_by <= tolerance else 1
