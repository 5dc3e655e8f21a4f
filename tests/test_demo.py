"""``meterline demo`` end to end: a real subprocess, with no provider keys in its environment."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

REQUESTS = 24


def _clean_env(home: Path) -> dict[str, str]:
    """The caller's environment without provider keys or Meterline settings; a wide terminal so
    that rich does not abbreviate table cells."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("METERLINE_") and not k.endswith(("_API_KEY", "_BASE_URL"))
    }
    env.update(METERLINE_HOME=str(home), COLUMNS="200")
    return env


def _table_rows(output: str) -> dict[tuple[str, str], int]:
    """``(provider, model) → requests`` from the summary table's body rows."""
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 10 and cells[0] not in ("", "total"):
            rows[(cells[0], cells[1])] = int(cells[2].replace(",", ""))
    return rows


def test_demo_runs_end_to_end_and_logs_every_request(tmp_path: Path) -> None:
    db_path = tmp_path / "demo.db"
    db_path.write_bytes(b"left over from an earlier run")  # the demo must start afresh
    proc = subprocess.run(
        [sys.executable, "-m", "meterline.cli", "demo", "--requests", str(REQUESTS)],
        env=_clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout

    summary = re.search(rf"{REQUESTS} requests in [\d.]+s: (\d+) answered", out)
    assert summary is not None, out
    answered = int(summary.group(1))
    assert answered > 0
    table = _table_rows(out)
    assert {provider for provider, _ in table} == {"openai", "local-llama"}
    logged = sum(table.values())  # every attempt is a row: fallbacks add linked rows
    assert logged >= REQUESTS
    assert re.search(rf"│ total\s+│\s+│\s+{logged} │", out)
    assert f"meterline stats --database-url sqlite:///{db_path}" in out
    for endpoint in ("/v1/chat/completions", "/v1/models", "/api/stats", "/api/requests"):
        assert re.search(rf"http://127\.0\.0\.1:\d+{endpoint}", out)

    with sqlite3.connect(db_path) as conn:
        every = conn.execute("SELECT provider, model FROM requests").fetchall()
        rows = conn.execute(
            "SELECT provider, model, status, http_status, input_tokens, output_tokens, cost_pusd,"
            " cache_hit FROM requests WHERE id = request_group_id"  # final attempts only
        ).fetchall()
    assert len(rows) == REQUESTS  # a retried request is one row; fallbacks add linked rows
    by_group: dict[tuple[str, str], int] = {}
    for provider, model in every:
        by_group[(provider, model)] = by_group.get((provider, model), 0) + 1
    assert by_group == table
    ok = [r for r in rows if r[2] == "ok"]
    assert len(ok) == answered
    # Fresh answers cost money; the demo repeats some prompts, and cache hits cost nothing.
    assert all(tin > 0 and tout > 0 and (cost > 0) != bool(hit) for *_, tin, tout, cost, hit in ok)
    assert all(r[2] == "error" and r[3] >= 400 for r in rows if r[2] != "ok")
