"""``meterline serve`` refuses unsafe start-ups and runs several workers over shared counters."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.fakes.harness import free_port


def _serve(tmp_path: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("METERLINE_", "OPENAI_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "meterline.cli", "serve", "--log-level", "warning", *args],
        env={**clean, "METERLINE_HOME": str(tmp_path), **env},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def test_refuses_a_public_address_without_a_master_key(tmp_path: Path) -> None:
    proc = _serve(tmp_path, "--host", "0.0.0.0", "--port", str(free_port()))
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "METERLINE_MASTER_KEY" in out


def test_refuses_several_workers_without_shared_counters(tmp_path: Path) -> None:
    proc = _serve(tmp_path, "--workers", "2", "--port", str(free_port()))
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "METERLINE_REDIS_URL" in out


def test_several_workers_with_redis_serve(tmp_path: Path) -> None:
    port = free_port()
    proc = _serve(tmp_path, "--workers", "2", "--port", str(port),
                  METERLINE_REDIS_URL="redis://127.0.0.1:6379/0")  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, (
                    proc.stdout.read() if proc.stdout else ""
                )
                time.sleep(0.2)
        assert health.status_code == 200 and health.json()["database"] == "ok"
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
