"""CI smoke run of ``benchmarks/interleaved.py`` at a tiny size: it checks out a revision into a
temporary worktree, runs it beside this checkout against one fake upstream, prints the
comparison and removes the worktree. No speed thresholds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _worktrees() -> int:
    listed = subprocess.run(["git", "-C", str(ROOT), "worktree", "list"], capture_output=True,
                            text=True, check=True)  # fmt: skip
    return len(listed.stdout.splitlines())


def test_tiny_interleaved_run() -> None:
    before = _worktrees()
    command = [sys.executable, str(ROOT / "benchmarks" / "interleaved.py"), "--base", "HEAD"]
    command += ["--rounds", "2", "--duration", "0.5", "--concurrency", "1", "--loadgen", "aiohttp"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "round 2 of 2 done" in done.stdout
    lines = [line for line in done.stdout.splitlines() if "new ÷ base" in line]
    assert len(lines) == 2, done.stdout  # plain and streamed, concurrency 1
    for line in lines:
        assert line.count("×") == 4, line  # req/s, CPU, p50 and p99 ratios all computed
    assert _worktrees() == before  # the base checkout is gone again
