"""Instructions per request of the gateway, counted by valgrind's callgrind: a before/after
figure that a busy machine does not disturb (req/s and CPU seconds do).

    .venv/bin/python benchmarks/instructions.py [--requests 400]

The fake upstream and Meterline start as in ``compare.py`` (``targets.py``), Meterline under
``valgrind --tool=callgrind --instr-atstart=no``. After a warm-up, instrumentation is switched
on, ``--requests`` plain requests are sent one after another on one keep-alive connection,
then 1 s passes (the log writer flushes its batch inside the window, so its cost counts), and
the count is read; the same again for streamed requests. Needs ``valgrind``
(``apt-get install -y valgrind``); user-space instructions only, so system calls are not in it.
Runs take ~1 min for 400 requests of each kind.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from loadgen import COUNTER
from procs import child, free_port, wait_ready
from targets import CHAT_PATH, create_key, gateway_config, gateway_env, request_body, start_upstream


def send(conn: http.client.HTTPConnection, token: str, stream: bool, count: int) -> None:
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    for i in range(count):
        body = request_body(stream).replace(COUNTER, f"{time.time_ns()}-{i}")
        conn.request("POST", CHAT_PATH, body, headers)
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"answer {response.status}: {data[:300]!r}")


def control(pid: int, *args: str) -> None:
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def counted(out: Path, pid: int) -> int:
    """Dump the counts so far and return their total (then delete the dump)."""
    control(pid, "--dump")
    dumps = sorted(out.parent.glob(f"{out.name}*"), key=lambda p: p.stat().st_mtime)
    total = next(
        int(line.split()[1])
        for line in dumps[-1].read_text(errors="replace").splitlines()
        if line.startswith("totals:")
    )
    for dump in dumps:
        dump.unlink()
    return total


def run(requests: int, tmp: Path) -> dict[str, int]:
    with ExitStack() as stack:
        _, upstream_port = start_upstream(stack, tmp)
        config, database_url = gateway_config(tmp, upstream_port), f"sqlite:///{tmp / 'bench.db'}"
        key = create_key(tmp, config, database_url)
        port, out = free_port(), tmp / "callgrind.out"
        command = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        command += [f"--callgrind-out-file={out}", sys.executable, "-m", "meterline.cli", "serve"]
        command += ["--host", "127.0.0.1", "--port", str(port), "--config", str(config)]
        command += ["--database-url", database_url, "--log-level", "warning"]
        pid = stack.enter_context(child(command, tmp / "meterline.log", gateway_env(tmp)))
        wait_ready(f"http://127.0.0.1:{port}/health", pid, tmp / "meterline.log", timeout=600)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        per_request: dict[str, int] = {}
        for stream in (False, True):
            send(conn, key, stream, 150)  # warm-up
        for stream in (False, True):
            time.sleep(1.0)  # the writer goes idle
            control(pid, "--instr=on")
            control(pid, "--zero")
            send(conn, key, stream, requests)
            time.sleep(1.0)
            control(pid, "--instr=off")
            per_request["stream" if stream else "plain"] = counted(out, pid) // requests
        conn.close()
    return per_request


def main() -> int:
    parser = argparse.ArgumentParser(description="Instructions per request (callgrind).")
    parser.add_argument("--requests", type=int, default=400, help="requests of each kind")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="meterline-instr-") as tmp:
        result = run(args.requests, Path(tmp))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
