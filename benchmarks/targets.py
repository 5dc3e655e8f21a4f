"""The servers a benchmark loads: the fast fake upstream and Meterline in front of it.

Meterline runs as ``meterline serve`` with a temporary YAML config and SQLite request log, every
default stage on except the response cache: a virtual key (made with ``meterline keys create``)
with its own rate limits and budget, tenant rate limits and budget, a global budget, the spend
breakers, classification, routing, compression (skipped: prompts are short) and budget
reservation and settlement. All limits are set far above what a run uses, so they are checked on
every request but never refuse one.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from loadgen import COUNTER, TOKEN
from procs import child, free_port, wait_ready

__all__ = [
    "HERE",
    "MODEL",
    "Target",
    "check_answers",
    "request_body",
    "start_meterline",
    "start_upstream",
]

HERE = Path(__file__).resolve().parent
MODEL = "gpt-4o-mini"
CHAT_PATH = "/v1/chat/completions"
# Every request differs (COUNTER), so no cache could answer: this measures forwarding.
MESSAGES = [{"role": "user", "content": f"Say hello in one short sentence. #{COUNTER}"}]
HIGH = "1000000000"  # a rate limit (per minute) no run reaches
BUDGET = "1000000.00"  # USD; a budget no run reaches


@dataclass(frozen=True, slots=True)
class Target:
    """One thing to load: where to send requests, which token, which process to watch."""

    name: str
    url: str
    token: str
    pid: int


def request_body(stream: bool) -> str:
    body: dict[str, object] = {"model": MODEL, "messages": MESSAGES, "max_tokens": 32}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return json.dumps(body)


def gateway_config(
    tmp: Path, upstream_port: int, redis_url: str | None = None, counters_file: bool = False
) -> Path:
    """The benchmark's configuration; with ``redis_url`` the counters (rate limits, budgets)
    live in Redis, under a prefix of this run's own, with ``counters_file`` in a file in
    ``tmp``: either is what several workers need."""
    path = tmp / "meterline.yaml"
    shared = ""
    if redis_url:
        shared = f"  redis_url: '{redis_url}'\n  redis_prefix: 'bench-{secrets.token_hex(4)}:'\n"
    elif counters_file:
        shared = f"  counters_file: '{tmp / 'counters'}'\n"
    path.write_text(
        "providers:\n"
        "  - name: openai\n"
        "    type: openai\n"
        f"    base_url: http://127.0.0.1:{upstream_port}/v1\n"
        "    api_key: sk-bench\n"
        "cache: {enabled: false}\n"
        "accounting:\n"
        "  budgets:\n"
        f'    - {{scope: global, period: daily, usd: "{BUDGET}"}}\n'
        f'    - {{scope: tenant, subject: bench, period: monthly, usd: "{BUDGET}"}}\n'
        f"  tenants: {{bench: {{rpm: {HIGH}, tpm: {HIGH}000}}}}\n" + shared
    )
    return path


def gateway_env(tmp: Path) -> dict[str, str]:
    """The caller's environment minus provider keys and Meterline settings that would leak in."""
    prefixes = ("OPENAI_", "ANTHROPIC_", "GEMINI_", "OLLAMA_", "METERLINE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return env | {"METERLINE_HOME": str(tmp)}


def create_key(tmp: Path, config: Path, database_url: str) -> str:
    """A virtual key of tenant ``bench`` with its own rpm/tpm limits and daily budget."""
    command = [sys.executable, "-m", "meterline.cli", "keys", "--config", str(config)]
    command += ["--database-url", database_url, "create", "--name", "bench", "--tenant", "bench"]
    command += ["--rpm", HIGH, "--tpm", f"{HIGH}000", "--budget-usd", BUDGET]
    command += ["--budget-period", "daily"]
    done = subprocess.run(command, capture_output=True, text=True, env=gateway_env(tmp))
    words = done.stdout.split()
    if done.returncode != 0 or not words or not words[-1].startswith("mk-"):
        raise RuntimeError(f"could not create a virtual key:\n{done.stderr}{done.stdout}")
    return words[-1]


def start_upstream(stack: ExitStack, tmp: Path) -> tuple[Target, int]:
    """The fake upstream, stopped when ``stack`` closes; the target and its port."""
    port = free_port()
    command = [sys.executable, str(HERE / "fastupstream.py"), "--port", str(port)]
    pid = stack.enter_context(child(command, tmp / "upstream.log"))
    wait_ready(f"http://127.0.0.1:{port}/health", pid, tmp / "upstream.log")
    return Target("direct", f"http://127.0.0.1:{port}{CHAT_PATH}", TOKEN, pid), port


def start_meterline(
    stack: ExitStack,
    tmp: Path,
    upstream_port: int,
    *,
    workers: int = 1,
    redis_url: str | None = None,
    counters_file: bool = False,
    name: str = "meterline",
) -> Target:
    """Meterline in front of the fake upstream (request log: ``tmp/bench.db``); ``workers``
    processes (``serve --workers``), counters where :func:`gateway_config` puts them."""
    port = free_port()
    config = gateway_config(tmp, upstream_port, redis_url, counters_file)
    database_url = f"sqlite:///{tmp / 'bench.db'}"
    key = create_key(tmp, config, database_url)
    command = [sys.executable, "-m", "meterline.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--config", str(config)]
    command += ["--database-url", database_url, "--log-level", "warning"]
    if workers > 1:
        command += ["--workers", str(workers)]
    pid = stack.enter_context(child(command, tmp / "meterline.log", gateway_env(tmp)))
    wait_ready(f"http://127.0.0.1:{port}/health", pid, tmp / "meterline.log")
    return Target(name, f"http://127.0.0.1:{port}{CHAT_PATH}", key, pid)


def post(url: str, body: str, token: str) -> bytes:
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    data = body.replace(COUNTER, str(time.time_ns())).encode()
    request = urllib.request.Request(url, data, headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return bytes(response.read())


def check_answers(target: Target) -> None:
    """One plain and one streamed request, so a broken setup fails loudly, not as fast errors."""
    answer = json.loads(post(target.url, request_body(stream=False), target.token))
    if answer.get("object") != "chat.completion" or not answer.get("usage"):
        raise RuntimeError(f"{target.name}: unexpected answer {answer}")
    events = post(target.url, request_body(stream=True), target.token).decode()
    if "chat.completion.chunk" not in events or '"usage":{' not in events.replace(" ", ""):
        raise RuntimeError(f"{target.name}: unexpected stream {events[:500]}")
    if not events.rstrip().endswith("data: [DONE]"):
        raise RuntimeError(f"{target.name}: stream does not end with [DONE]")
