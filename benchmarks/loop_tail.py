"""Why a saturated event loop has a long latency tail, shown without the gateway.

    .venv/bin/python benchmarks/loop_tail.py [--rounds 3] [--duration 3] [--work-us 300]

Four bare ASGI apps under uvicorn (uvloop and httptools, as ``meterline serve`` runs), each
spending the same CPU per request (``--work-us``, a busy loop) and loaded in turn by the same
closed-loop client at concurrency 10, the order alternating between rounds:

* ``one step``: all the work, then the answer;
* ``two steps``: half the work, one turn of the event loop (``await asyncio.sleep(0)``), the rest;
* ``upstream call at the end``: 60% of the work, a call to the fast fake upstream through
  Meterline's own HTTP client, the rest;
* ``yield, then upstream call``: the same with one turn of the loop before the call (what
  ``Dispatch`` does, NOTES.md row 34).

Under load uvloop runs every ready task, then polls its sockets once. A client whose answer was
written at the end of that run sends its next request just after the poll, and the request
waits out a whole turn; an upstream answer to a call made at the end of the run does the same.
The mean latency is set by the CPU per request (ten requests share one core), so what moves is
the tail: p99 ÷ mean, the last column.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

CONCURRENCY = 10
VARIANTS = {
    "one": "one step",
    "two": "two steps",
    "call": "upstream call at the end",
    "yield-call": "yield, then upstream call",
}

# -- the app (imported by uvicorn in a process of its own) --------------------------------------

_VARIANT = os.environ.get("TAIL_VARIANT", "one")
_WORK = float(os.environ.get("TAIL_WORK_US", "300")) / 1e6
_UPSTREAM = os.environ.get("TAIL_UPSTREAM", "")
_BODY = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":32}'
_ANSWER = b'{"ok":true}'
_client: Any = None


def _burn(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def _lifespan(receive: Any, send: Any) -> None:
    global _client
    from meterline.providers.http import HttpClient
    from meterline.providers.upstream import UpstreamPool
    from meterline.settings.schema import RetrySettings, TimeoutSettings

    while (await receive())["type"] != "lifespan.shutdown":
        _client = HttpClient(UpstreamPool(), "bench", RetrySettings(), TimeoutSettings(), None)
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


async def _upstream() -> bytes:
    from meterline.providers.http import UpstreamCall

    headers = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
    return bytes(await _client.send(UpstreamCall("POST", _UPSTREAM, headers, _BODY)))


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    await receive()
    if _VARIANT == "one":
        _burn(_WORK)
    elif _VARIANT == "two":
        _burn(_WORK / 2)
        await asyncio.sleep(0)
        _burn(_WORK / 2)
    else:
        _burn(_WORK * 0.6)
        if _VARIANT == "yield-call":
            await asyncio.sleep(0)
        await _upstream()
        _burn(_WORK * 0.4)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_ANSWER))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": _ANSWER})


# -- the benchmark ------------------------------------------------------------------------------


def main() -> int:
    from loadgen import have_wrk, run_load
    from procs import child, free_port, wait_ready
    from report import console
    from rich.table import Table
    from targets import CHAT_PATH, request_body, start_upstream

    parser = argparse.ArgumentParser(description="The latency tail of a saturated event loop.")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (order alternates)")
    parser.add_argument("--duration", type=float, default=3, help="seconds per measurement")
    parser.add_argument("--work-us", type=float, default=300, help="CPU µs per request")
    args = parser.parse_args()
    here = Path(__file__).resolve().parent
    samples: dict[str, list[tuple[float, float, float, float]]] = {v: [] for v in VARIANTS}
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="loop-tail-")))
        upstream, port = start_upstream(stack, tmp)
        urls = {}
        for variant in VARIANTS:
            app_port = free_port()
            env = dict(os.environ, TAIL_VARIANT=variant, TAIL_WORK_US=str(args.work_us),
                       TAIL_UPSTREAM=f"http://127.0.0.1:{port}{CHAT_PATH}")  # fmt: skip
            command = [sys.executable, "-m", "uvicorn", "loop_tail:app", "--app-dir", str(here)]
            command += ["--port", str(app_port), "--log-level", "warning", "--no-access-log"]
            log_path = tmp / f"{variant}.log"
            pid = stack.enter_context(child(command, log_path, env))
            wait_ready(f"http://127.0.0.1:{app_port}/", pid, log_path)
            urls[variant] = f"http://127.0.0.1:{app_port}/"
        body, use_wrk = request_body(stream=False), have_wrk()
        for round_ in range(args.rounds):
            order = list(VARIANTS) if round_ % 2 == 0 else list(reversed(VARIANTS))
            for variant in order:
                load = run_load(urls[variant], body, CONCURRENCY, args.duration, use_wrk)
                mean = CONCURRENCY / load.rps * 1000
                samples[variant].append((load.rps, load.p50_ms, load.p99_ms, mean))
    table = Table(title=f"{args.work_us:.0f} µs of CPU per request, concurrency {CONCURRENCY}, "
                        f"medians of {args.rounds} rounds")  # fmt: skip
    for column in ("app", "req/s", "p50 ms", "p99 ms", "mean ms", "p99 ÷ mean"):
        table.add_column(column, justify="left" if column == "app" else "right")
    for variant, label in VARIANTS.items():
        rows = samples[variant]
        rps, p50, p99, mean = (statistics.median(r[i] for r in rows) for i in range(4))
        ratio = statistics.median(r[2] / r[3] for r in rows)
        table.add_row(label, f"{rps:,.0f}", f"{p50:.2f}", f"{p99:.2f}", f"{mean:.2f}",
                      f"{ratio:.2f}")  # fmt: skip
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
