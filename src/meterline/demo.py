"""``meterline demo``: the real gateway in front of simulated providers, with no API keys at all.

Two simulated upstreams run on loopback: an OpenAI one and an OpenAI-compatible "local-llama",
with realistic latency and a few transient errors (OpenAI's are retried by the gateway; the local
one is configured without retries, so its failures show up as error rows). The real gateway is
served by uvicorn on a free port, a burst of varied chat requests goes through it over HTTP, and
the request log it wrote is summarised with the query behind ``meterline stats`` and
``/api/stats``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvicorn
from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress
from starlette.applications import Starlette

from meterline.app import create_app
from meterline.gateway import Gateway
from meterline.report import print_stats
from meterline.server import UVICORN_OPTIONS
from meterline.settings import LogSettings, ModelEntry, ProviderSettings, RetrySettings, Settings
from meterline.sim import OpenAISim, SimSettings
from meterline.store import GroupStats, usage_stats

__all__ = ["run_demo"]

CONCURRENCY = 8
OPENAI_KEY = "sk-demo-openai"
LOCAL_KEY = "sk-demo-local"
# fmt: off
OPENAI_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-nano", "o4-mini")
LOCAL_MODELS = (
    ModelEntry(name="llama-3.1-8b-instant", tier="economy",
               price={"input": "0.05", "output": "0.08"}),
    ModelEntry(name="llama-3.3-70b-versatile", tier="standard",
               price={"input": "0.59", "output": "0.79"}),
)
# What clients ask for: bare names, ``provider:model`` and an alias (repeats weight the draw).
REQUESTED = (
    "gpt-4o-mini", "gpt-4o-mini", "gpt-4o", "openai:gpt-4.1-nano", "fast", "o4-mini",
    "llama-3.1-8b-instant", "llama-3.1-8b-instant", "local-llama:llama-3.3-70b-versatile",
)
PROMPTS = (
    "Summarise the plot of Hamlet in two sentences.",
    "What is the difference between TCP and UDP?",
    "Write a haiku about a database migration.",
    "Explain p95 latency to a product manager.",
    "Suggest three names for a coffee shop run by robots.",
    "How do I reverse a list in Python?",
    "Translate 'the invoice is overdue' into French.",
    "Give me a one-line pitch for a self-hosted LLM gateway.",
)
TOOLS = [{"type": "function", "function": {
    "name": "search_docs",
    "description": "Search the product documentation",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
}}]
# fmt: on


@dataclass(frozen=True, slots=True)
class Result:
    ok: bool
    label: str  # the finish reason, or what went wrong


def _home() -> Path:
    return Path(os.environ.get("METERLINE_HOME") or Path.home() / ".meterline").expanduser()


def _fresh_database(home: Path) -> Path:
    """``<home>/demo.db``, emptied so that the summary covers this run only."""
    path = home / "demo.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path


def _sim(models: tuple[str, ...], key: str, error_rate: float, seed: int) -> OpenAISim:
    """An upstream answering after 0.1-0.4 s, streaming a chunk every ~4 ms."""
    return OpenAISim(
        SimSettings(
            models, key, ttft=0.25, per_token=0.004, jitter=0.6, error_rate=error_rate, seed=seed
        )
    )


def _settings(openai_url: str, local_url: str, db_path: Path, home: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{db_path}",
        providers=(
            ProviderSettings(name="openai", type="openai", base_url=openai_url, api_key=OPENAI_KEY),
            ProviderSettings(
                name="local-llama",
                type="openai-compatible",
                base_url=local_url,
                api_key=LOCAL_KEY,
                models=LOCAL_MODELS,
                retry=RetrySettings(max_attempts=1),
            ),
        ),
        aliases={"fast": "openai:gpt-4.1-nano"},
        retry=RetrySettings(max_attempts=3, backoff_initial=0.1, backoff_max=1.0),
        log=LogSettings(flush_interval=0.1, spill_dir=str(home / "demo-spill")),
    )


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers, so that Ctrl-C cancels the whole demo (through
    ``asyncio.run``) and the demo's clean-up stops the gateway, instead of only the gateway."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve(app: Starlette) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    """Serve ``app`` on a free loopback port; return the server, its task and its URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", **UVICORN_OPTIONS
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the gateway did not start")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, task, f"http://127.0.0.1:{port}"


def _plan(count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` varied chat requests, the same ones for the same seed."""
    rng = random.Random(seed)
    bodies = []
    for _ in range(count):
        body: dict[str, Any] = {
            "model": rng.choice(REQUESTED),
            "messages": [{"role": "user", "content": rng.choice(PROMPTS)}],
        }
        roll = rng.random()
        if roll < 0.1:
            body["tools"] = TOOLS
        elif roll < 0.2:
            body["response_format"] = {"type": "json_object"}
            body["messages"].insert(0, {"role": "system", "content": "Answer in JSON."})
        elif roll < 0.3:
            body["max_tokens"] = 8  # cut short: finish_reason "length"
        if rng.random() < 0.4:
            body.update(stream=True, stream_options={"include_usage": True})
        bodies.append(body)
    return bodies


async def _read_stream(response: aiohttp.ClientResponse) -> Result:
    finish = "no finish reason"
    async for line in response.content:
        if not line.startswith(b"data: "):
            continue
        data = line[6:].strip()
        if data == b"[DONE]":
            return Result(True, finish)
        event = orjson.loads(data)
        if "error" in event:
            return Result(False, f"mid-stream error: {event['error'].get('message', '')[:60]}")
        for choice in event.get("choices", []):
            finish = choice.get("finish_reason") or finish
    return Result(False, "stream ended without [DONE]")


async def _send(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> Result:
    try:
        async with session.post(
            url, data=orjson.dumps(body), headers={"content-type": "application/json"}
        ) as response:
            if response.status != 200:
                return Result(False, f"HTTP {response.status}")
            if body.get("stream"):
                return await _read_stream(response)
            answer = await response.json(loads=orjson.loads)
            return Result(True, answer["choices"][0]["finish_reason"])
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Result(False, type(exc).__name__)


async def _burst(console: Console, base_url: str, bodies: list[dict[str, Any]]) -> list[Result]:
    """Send every request, ``CONCURRENCY`` at a time, with a progress bar."""
    url = f"{base_url}/v1/chat/completions"
    limit = asyncio.Semaphore(CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=60)
    with Progress(
        *Progress.get_default_columns(), MofNCompleteColumn(), console=console
    ) as progress:
        task = progress.add_task("sending requests", total=len(bodies))

        async def one(session: aiohttp.ClientSession, body: dict[str, Any]) -> Result:
            async with limit:
                result = await _send(session, url, body)
            progress.advance(task)
            return result

        async with aiohttp.ClientSession(timeout=timeout) as session:
            return list(await asyncio.gather(*(one(session, b) for b in bodies)))


def _print_outcomes(console: Console, results: list[Result], elapsed: float) -> None:
    ok = [r.label for r in results if r.ok]
    failed = Counter(r.label for r in results if not r.ok)
    console.print(
        f"\n{len(results)} requests in {elapsed:.1f}s: [green]{len(ok)} answered[/green]"
        f" (finish reasons: {_counts(Counter(ok))}), [red]{sum(failed.values())} failed"
        f"[/red]{f' ({_counts(failed)})' if failed else ''}"
    )


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{label} ×{n}" for label, n in counter.most_common())


def _print_retries(console: Console, groups: list[GroupStats], sims: dict[str, OpenAISim]) -> None:
    console.print(
        "Upstream calls (429/5xx are retried, except on local-llama where retries are off):"
    )
    for name, sim in sims.items():
        logged = sum(g.requests for g in groups if g.provider == name)
        console.print(f"  {name}: {len(sim.received)} call(s) for {logged} request(s)")


def _print_next_steps(console: Console, db_path: Path, base_url: str) -> None:
    steps = (
        (f"meterline stats --database-url sqlite:///{db_path}", "this table again, any time"),
        ("meterline serve", "the gateway with your own keys (OPENAI_API_KEY, … or --config)"),
        ("README.md", "configuration, aliases, pricing, the API"),
    )
    console.print("\n[bold]Where to look next[/bold]")
    for command, what in steps:
        console.print(f"  [cyan]{command}[/cyan]\n      {what}", highlight=False)
    console.print("  The demo gateway's endpoints (it stopped when the demo ended):")
    for path in ("/v1/chat/completions", "/v1/models", "/api/stats", "/api/requests", "/health"):
        console.print(f"    {base_url}{path}", highlight=False)


async def run_demo(console: Console, *, requests: int = 120, seed: int = 7) -> int:
    """Run the demo; return the exit code (1 if no request got an answer)."""
    home = _home()
    db_path = _fresh_database(home)
    sims = {
        "openai": _sim(OPENAI_MODELS, OPENAI_KEY, 0.04, seed),
        "local-llama": _sim(tuple(m.name for m in LOCAL_MODELS), LOCAL_KEY, 0.05, seed + 1),
    }
    try:
        urls = [await sim.start() for sim in sims.values()]
        console.print(f"Simulated providers: openai at {urls[0]}, local-llama at {urls[1]}")
        app = create_app(_settings(urls[0], urls[1], db_path, home), env={})
        server, task, base_url = await _serve(app)
        try:
            console.print(f"Meterline gateway at {base_url} (log: {db_path})\n", highlight=False)
            started = time.perf_counter()
            results = await _burst(console, base_url, _plan(requests, seed))
            elapsed = time.perf_counter() - started
            gateway: Gateway = app.state.gateway
            await gateway.writer.flush()
            groups = await usage_stats(gateway.engine, days=1)
        finally:
            server.should_exit = True
            await task
    finally:
        for sim in sims.values():
            await sim.stop()
    _print_outcomes(console, results, elapsed)
    _print_retries(console, groups, sims)
    console.print()
    print_stats(console, groups, "Meterline demo: usage by provider and model")
    _print_next_steps(console, db_path, base_url)
    return 0 if any(r.ok for r in results) else 1
