"""Two gateway processes sharing PostgreSQL and their counters (in Redis, or in a counters file
on this host): one budget and one rate limit hold across both, under concurrent load."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest

from meterline.accounting.estimate import worst_case_cost
from meterline.catalog import Catalog, to_usd
from meterline.sim import OpenAISim
from meterline.wire.openai_request import decode_request
from tests.accounting.conftest import MASTER, REDIS_URL, _drop_prefix
from tests.conftest import UPSTREAM_KEY, _truncate
from tests.fakes.harness import free_port

ASK = [{"role": "user", "content": "Name a prime number."}]


def _config(tmp_path: Path, sim: OpenAISim, counters: str) -> Path:
    path = tmp_path / "replica.yaml"
    path.write_text(
        "providers:\n"
        f"  - {{name: openai, type: openai, base_url: '{sim.base_url}', api_key: {UPSTREAM_KEY}}}\n"
        f"accounting: {counters}\n"
        "log: {flush_interval: 0.05}\n"
        "cache: {enabled: false}\n"
    )
    return path


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"replica exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"replica did not become healthy: {log.read_text()[-2000:]}")


@pytest.fixture(params=["redis", "file"])
def replicas(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str, openai_sim: OpenAISim
) -> Iterator[list[str]]:
    asyncio.run(_truncate(postgres_url))
    prefix = f"mlrep:{secrets.token_hex(4)}:"
    counters = (f"{{redis_url: '{REDIS_URL}', redis_prefix: '{prefix}'}}" if request.param == "redis"
                else f"{{counters_file: '{tmp_path / 'counters'}'}}")  # fmt: skip
    config = _config(tmp_path, openai_sim, counters)
    env = {**os.environ, "METERLINE_MASTER_KEY": MASTER, "METERLINE_HOME": str(tmp_path)}
    procs, urls = [], []
    for i in range(2):
        port = free_port()
        log = tmp_path / f"replica{i}.log"
        cmd = [sys.executable, "-m", "meterline.cli", "serve", "--port", str(port),
               "--config", str(config), "--database-url", postgres_url, "--log-level", "warning"]  # fmt: skip
        with log.open("wb") as out:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        procs.append((proc, log))
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for (proc, log), url in zip(procs, urls, strict=True):
            _wait_healthy(url, proc, log)
        yield urls
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            proc.wait(15)
        asyncio.run(_drop_prefix(prefix))


def _create_key(url: str, **fields: object) -> dict[str, str]:
    body = {"name": "replica-test", "tenant": "acme", **fields}
    resp = httpx.post(f"{url}/api/keys", json=body, headers={"authorization": f"Bearer {MASTER}"})
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def _spread(urls: list[str], key: str, n: int) -> list[object]:
    clients = [openai.AsyncOpenAI(base_url=f"{u}/v1", api_key=key, max_retries=0) for u in urls]
    try:
        calls = [clients[i % len(clients)].chat.completions.create(
            model="gpt-4o-mini", messages=ASK, max_tokens=30) for i in range(n)]  # type: ignore[arg-type]  # fmt: skip
        return await asyncio.gather(*calls, return_exceptions=True)
    finally:
        for client in clients:
            await client.close()


def _key_rows(url: str, key_id: str, expected: int) -> list[dict[str, object]]:
    """The key's log rows once both replicas have written them all."""
    deadline = time.monotonic() + 20
    while True:
        rows = httpx.get(f"{url}/api/requests", params={"limit": 1000},
                         headers={"authorization": f"Bearer {MASTER}"}).json()["data"]  # fmt: skip
        mine = [r for r in rows if r["key_id"] == key_id]
        if len(mine) >= expected or time.monotonic() > deadline:
            return mine
        time.sleep(0.1)


def test_one_rate_limit_and_one_budget_across_two_replicas(replicas: list[str]) -> None:
    if 60 - time.time() % 60 < 15:  # keep the burst inside one rate-limit window
        time.sleep(60 - time.time() % 60 + 0.05)
    limited = _create_key(replicas[0], rpm=15)
    results = asyncio.run(_spread(replicas, limited["key"], 40))
    ok = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(ok) == 15 and len(refused) == 25

    info = Catalog.builtin().get("openai", "gpt-4o-mini")
    assert info is not None
    per_request = worst_case_cost(
        decode_request({"model": "gpt-4o-mini", "messages": ASK, "max_tokens": 30}), info
    )
    usd = to_usd(10 * per_request).quantize(Decimal("0.000001"))
    budgeted = _create_key(replicas[1], rpm=10_000, models=["gpt-4o-mini"],
                           budget={"usd": str(usd), "period": "daily"})  # fmt: skip
    results = asyncio.run(_spread(replicas, budgeted["key"], 120))
    ok = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(ok) + len(refused) == 120 and ok and refused
    rows = _key_rows(replicas[0], budgeted["id"], 120)
    spent = sum(Decimal(str(r["cost_usd"])) for r in rows)
    assert len(rows) == 120 and 0 < spent <= usd
    served_by = {r["status"] for r in rows}
    assert served_by == {"ok", "error"}
