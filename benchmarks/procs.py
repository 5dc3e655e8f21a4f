"""Process plumbing for the benchmarks: free ports, child servers, readiness, /proc figures."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

__all__ = [
    "child",
    "cpu_seconds",
    "free_port",
    "group_pids",
    "machine_seconds",
    "machine_share",
    "memory_mb",
    "wait_ready",
]

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the whole process (all threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def group_pids(leader: int) -> list[int]:
    """The processes of the session ``leader`` started (``child`` starts each server in a
    session of its own): a server and the workers it forked."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == leader:  # the session id
                    pids.append(int(entry.name))
    return pids


def machine_seconds() -> tuple[float, float]:
    """(busy, stolen) CPU seconds of the whole machine since boot, from /proc/stat. Stolen: time
    a virtual machine's CPUs were ready to run but the host ran something else."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq) / CLOCK_TICKS, steal / CLOCK_TICKS


def machine_share(seconds: float, elapsed: float) -> float:
    """``seconds`` of CPU time as a percentage of what all the machine's CPUs had in
    ``elapsed`` seconds of wall time."""
    return seconds / (elapsed * (os.cpu_count() or 1)) * 100 if elapsed > 0 else 0.0


def memory_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def child(command: list[str], log_path: Path, env: dict[str, str] | None = None) -> Iterator[int]:
    """Run ``command`` for the duration of the block; yields its pid, always stops it."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        yield proc.pid
    finally:
        _signal_group(proc.pid, signal.SIGTERM)  # the whole session: servers may fork workers
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the process group that ``child`` created with ``start_new_session``."""
    with suppress(ProcessLookupError):
        os.killpg(pid, sig)


def wait_ready(url: str, pid: int, log_path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _zombie(pid):
            raise RuntimeError(f"{url} died while starting:\n{log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} was not ready within {timeout:g}s:\n{log_path.read_text()[-2000:]}")


def _zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
