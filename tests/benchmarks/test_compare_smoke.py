"""CI smoke run of the overhead benchmark (``meterline bench`` → ``benchmarks/compare.py``) at a
tiny size: the fake upstream and a real ``meterline serve`` with every default stage on, the
aiohttp load generator (CI has no ``wrk``), concurrency 1 and 2. It checks that the run works
end to end and that its results are well-formed: every request answered, every one logged.
No speed thresholds: the full run's table is in benchmarks/README.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROWS = {(t, s, c) for t in ("direct", "meterline") for s in (False, True) for c in (1, 2)}


def test_tiny_benchmark_run(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "meterline.cli", "bench", "--duration", "1"]
    command += ["--concurrency", "1,2", "--warmup", "0.5", "--loadgen", "aiohttp"]
    command += ["--json", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Meterline (defaults on, cache off)" in done.stdout
    results = json.loads(out.read_text())
    rows = results["rows"]
    assert {(r["target"], r["stream"], r["concurrency"]) for r in rows} == ROWS
    for row in rows:
        assert row["requests"] > 0 and row["errors"] == 0, row
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"], row
        assert row["rps"] > 0 and row["cpu_s_per_1k"] >= 0
        assert (row["ttft_ms"] is not None) == row["stream"], row
    memory = results["memory"]["meterline"]
    assert memory["rss_before_mib"] > 0 and memory["rss_after_mib"] > 0
    assert memory["requests_served"] >= sum(
        r["requests"] for r in rows if r["target"] == "meterline"
    )
    assert results["meterline_log_rows"] == memory["requests_served"]


@pytest.mark.parametrize("counters", ["file", "redis"])
def test_tiny_scaling_run(tmp_path: Path, counters: str) -> None:
    """``--workers 1,2``: Meterline served by one worker, then by two, each with its counters in
    a counters file or the real Redis; every request answered and logged."""
    out = tmp_path / "scaling.json"
    command = [sys.executable, "-m", "meterline.cli", "bench", "--workers", "1,2"]
    command += ["--counters", counters]
    command += ["--duration", "1", "--concurrency", "2", "--warmup", "0.5"]
    command += ["--loadgen", "aiohttp", "--json", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Meterline served by N worker processes" in done.stdout
    results = json.loads(out.read_text())
    assert results["counters"] == counters
    rows = results["rows"]
    assert {(r["target"], r["stream"]) for r in rows} == {
        (w, s) for w in ("1w", "2w") for s in (False, True)
    }
    for row in rows:
        assert row["requests"] > 0 and row["errors"] == 0, row
        assert row["rps"] > 0 and row["cpu_s_per_1k"] > 0, row
    for name in ("1w", "2w"):
        assert results["log_rows"][name] == results["requests_served"][name]
        assert results["rss_mib"][name] > 0
