"""What the fake coding CLIs (``claude``, ``codex``, ``gemini`` next to this file) share.

Each fake parses the flags its real CLI takes and prints that CLI's documented NDJSON output,
one flushed line at a time, answering ``You said: <last line of the prompt>``. Environment:

* ``FAKE_CLI_MODE``: ``ok`` (default); ``error`` (the CLI reports an error in its output and
  exits 1); ``exit`` (no output, a long stderr, exit code 2); ``hang`` (one start-up line, then
  sleeps "forever"); ``stall`` (the first piece of the answer, then sleeps "forever"), where
  forever is ``FAKE_CLI_HANG_MAX`` seconds (120 by default), then exit code 3.
* ``FAKE_CLI_DELAY``: seconds to sleep after every output line.
* ``FAKE_CLI_RECORD``: a file to which a JSON line is appended at start (``argv``, ``stdin``,
  ``prompt``, ``pid``, ``time``) and one at the end (``pid``, ``time``).
* ``FAKE_CLI_IGNORE_TERM=1``: ignore SIGTERM (only SIGKILL stops the fake).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from typing import Any

MODE = os.environ.get("FAKE_CLI_MODE", "ok")
DELAY = float(os.environ.get("FAKE_CLI_DELAY") or 0)
SESSION = "5f0c1f7e-0000-4000-8000-000000000001"

if os.environ.get("FAKE_CLI_IGNORE_TERM") == "1":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def read_stdin() -> str:
    """Piped stdin, as the real CLIs read it ("" for a terminal or /dev/null)."""
    if sys.stdin is None or sys.stdin.isatty():
        return ""
    return sys.stdin.read()


def record(event: str, **fields: Any) -> None:
    path = os.environ.get("FAKE_CLI_RECORD")
    if path:
        line = json.dumps({"event": event, "pid": os.getpid(), "time": time.time(), **fields})
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")


def emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()
    if DELAY:
        time.sleep(DELAY)


def answer_for(prompt: str) -> str:
    lines = [line for line in prompt.strip().splitlines() if line.strip()]
    return f"You said: {lines[-1] if lines else ''}"


def pieces(text: str) -> list[str]:
    """The answer in word-sized deltas, as a streaming model sends it."""
    return re.findall(r"\S+\s*", text) or [text]


def tokens(text: str) -> int:
    return len(text.split())


def sleep_forever() -> None:
    """Hang (for ``FAKE_CLI_HANG_MAX`` seconds at most, so a killed test run leaves nothing)."""
    time.sleep(float(os.environ.get("FAKE_CLI_HANG_MAX") or 120))
    sys.exit(3)


def crash(binary: str) -> None:
    sys.stderr.write("x" * 1000 + f"\n{binary}: fatal: the fake was told to crash\n")
    sys.stderr.flush()
    sys.exit(2)


def start(binary: str, argv: list[str], stdin: str, prompt: str) -> None:
    """Record the call, then act on the modes that need no CLI-specific output."""
    record("start", binary=binary, argv=argv, stdin=stdin, prompt=prompt)
    if MODE == "exit":
        crash(binary)


def end() -> None:
    record("end")
