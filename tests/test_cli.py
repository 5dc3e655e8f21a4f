"""The ``meterline`` command line, run as a subprocess: ``check-config`` and ``stats``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from meterline.catalog import ModelInfo
from meterline.pipeline.context import Outcome, RequestContext, Route
from meterline.pipeline.log import row_for
from meterline.settings import LogSettings
from meterline.store import LogWriter, open_engine
from meterline.types import ChatRequest, Usage

GOOD = """\
server:
  port: 4100
providers:
  - name: openai
    type: openai
    api_key_env: OPENAI_API_KEY
  - name: local
    type: openai-compatible
    base_url: http://127.0.0.1:8000/v1
    models:
      - name: llama-3.1-8b-instant
        tier: economy
        price: {input: "0.05", output: "0.08"}
aliases:
  fast: openai:gpt-4.1-nano
"""

BAD = """\
server:
  port: "eighty"
providers:
  - type: openai
    api_key: sk-test
  - name: local
    type: openai-compatible
    base_url: http://127.0.0.1:8000/v1
    modles: [llama-3.1-8b-instant]
timeout:
  connect: fast
"""

NOT_YAML = """\
providers:
  - name: openai
    type: openai
  aliases: {fast: openai:gpt-4o-mini
"""


def meterline(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("METERLINE_") and not k.endswith(("_API_KEY", "_BASE_URL"))
    }
    env.update(METERLINE_HOME=str(tmp_path / "home"), COLUMNS="300")
    return subprocess.run(
        [sys.executable, "-m", "meterline.cli", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_config_accepts_a_valid_file(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(GOOD)
    proc = meterline("check-config", "good.yaml", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "good.yaml: OK (2 provider(s): openai, local; 1 alias(es))"


def test_check_config_reports_every_error_with_its_place(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BAD)
    proc = meterline("check-config", "bad.yaml", tmp_path=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        "error bad.yaml:2:9: server.port: expected an integer, got 'eighty'",
        "error bad.yaml:4:5: providers[0].name: is required",
        "error bad.yaml:9:5: providers[1].modles: unknown key (did you mean 'models'?)",
        "error bad.yaml:11:12: timeout.connect: expected a number, got 'fast'",
        "4 problem(s) in bad.yaml",
    ]


def test_check_config_reports_invalid_yaml_with_its_place(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(NOT_YAML)
    proc = meterline("check-config", "broken.yaml", tmp_path=tmp_path)
    assert proc.returncode == 1
    first, summary = proc.stdout.splitlines()
    assert re.fullmatch(r"error broken\.yaml:4:3: \(top level\): invalid YAML: .+", first)
    assert summary == "1 problem(s) in broken.yaml"


def test_check_config_on_a_missing_file(tmp_path: Path) -> None:
    proc = meterline("check-config", "nowhere.yaml", tmp_path=tmp_path)
    assert proc.returncode == 1
    assert "cannot read nowhere.yaml: No such file or directory" in proc.stdout


def _row(
    provider: str,
    model: str,
    *,
    ok: bool = True,
    tokens: tuple[int, int] = (100, 50),
    cost: int = 0,
    latency_ms: float = 200.0,
    days_ago: float = 0.0,
) -> dict[str, object]:
    """A request-log row, made by the same function the gateway uses."""
    ctx = RequestContext(
        ChatRequest(model=model, messages=()),
        "openai",
        route=Route(provider, ModelInfo(provider=provider, name=model), "explicit"),
        created_at=time.time() - days_ago * 86400,
    )
    usage = Usage(*tokens) if ok else Usage()
    outcome = Outcome("ok" if ok else "error", usage, cost=cost if ok else 0,
                      http_status=200 if ok else 502, latency_ms=latency_ms)  # fmt: skip
    return row_for(ctx, outcome)


async def _populate(db_path: Path, rows: list[dict[str, object]]) -> None:
    engine = await open_engine(f"sqlite:///{db_path}")
    try:
        writer = LogWriter(engine, LogSettings(), db_path.parent / "spill")
        writer.start()
        for row in rows:
            writer.submit(row)
        await writer.close()
        assert writer.written == len(rows)
    finally:
        await engine.dispose()


def _stats_rows(output: str) -> dict[str, list[str]]:
    """``"provider model"`` (or ``"total"``) → the other cells of that table row."""
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 10:
            rows[f"{cells[0]} {cells[1]}".strip()] = cells[2:]
    return rows


async def test_stats_summarises_the_request_log(tmp_path: Path) -> None:
    db_path = tmp_path / "log.db"
    pusd = 10**12  # picodollars per dollar
    await _populate(
        db_path,
        [
            _row("openai", "gpt-4o-mini", cost=pusd // 1000, latency_ms=100),
            _row("openai", "gpt-4o-mini", cost=pusd // 1000, latency_ms=300),
            _row("openai", "gpt-4o-mini", ok=False, latency_ms=50),
            _row("local", "llama-3.1-8b-instant", tokens=(1000, 2000), cost=250_000_000),
            _row("openai", "gpt-4o", cost=pusd, days_ago=30),  # outside the default 7 days
        ],
    )
    proc = meterline("stats", "--database-url", f"sqlite:///{db_path}", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Meterline usage, last 7 day(s)" in proc.stdout
    rows = _stats_rows(proc.stdout)
    # requests, errors, input, output, cached, cost, avg ms, p95 ms
    assert rows["openai gpt-4o-mini"] == [
        "3", "1 (33%)", "200", "100", "0", "$0.002000", "150.0", "300.0"
    ]  # fmt: skip
    assert rows["local llama-3.1-8b-instant"][:6] == ["1", "0 (0%)", "1,000", "2,000", "0",
                                                       "$0.000250"]  # fmt: skip
    assert rows["total"][:6] == ["4", "1", "1,200", "2,100", "0", "$0.002250"]
    assert "openai gpt-4o" not in rows

    proc = meterline(
        "stats", "--database-url", f"sqlite:///{db_path}", "--days", "60", tmp_path=tmp_path
    )
    assert proc.returncode == 0
    assert _stats_rows(proc.stdout)["openai gpt-4o"][:6] == [
        "1", "0 (0%)", "100", "50", "0", "$1.000000"
    ]  # fmt: skip
    assert _stats_rows(proc.stdout)["total"][0] == "5"


def test_stats_on_an_empty_log(tmp_path: Path) -> None:
    db_path = tmp_path / "empty.db"
    proc = meterline("stats", "--database-url", f"sqlite:///{db_path}", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Meterline usage, last 7 day(s)" in proc.stdout
    assert "total" not in _stats_rows(proc.stdout)
    assert db_path.exists()  # the schema was created by the migrations
