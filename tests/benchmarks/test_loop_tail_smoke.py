"""CI smoke run of ``benchmarks/loop_tail.py`` at a tiny size: four bare uvicorn apps and the fake
upstream start, each app answers under load, and the table has a row for each. No thresholds:
the figures are in benchmarks/NOTES.md (row 34)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LABELS = ("one step", "two steps", "upstream call at the end", "yield, then upstream call")


def test_tiny_loop_tail_run() -> None:
    command = [sys.executable, str(ROOT / "benchmarks" / "loop_tail.py"), "--rounds", "1"]
    command += ["--duration", "1", "--work-us", "100"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if any(x in line for x in LABELS)]
    assert len(rows) == len(LABELS), done.stdout
    for row in rows:
        cells = [c.strip() for c in row.strip("│ ").split("│")]
        assert float(cells[1].replace(",", "")) > 0, row  # req/s: every app answered
