"""``meterline serve`` refuses unsafe start-ups and runs several workers over shared counters
(in Redis, or in a counters file it makes)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

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


def _wait_healthy(proc: subprocess.Popen[str], port: int) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
        except httpx.TransportError:
            assert time.monotonic() < deadline and proc.poll() is None, (
                proc.stdout.read() if proc.stdout else ""
            )
            time.sleep(0.2)


def test_several_workers_with_redis_serve(tmp_path: Path) -> None:
    port = free_port()
    proc = _serve(tmp_path, "--workers", "2", "--port", str(port),
                  METERLINE_REDIS_URL="redis://127.0.0.1:6379/0")  # fmt: skip
    try:
        health = _wait_healthy(proc, port)
        assert health.status_code == 200 and health.json()["database"] == "ok"
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def _counter_files() -> set[Path]:
    return set(Path("/dev/shm").glob("meterline-counters-*")) | set(
        Path(tempfile.gettempdir()).glob("meterline-counters-*")
    )


def _metrics_dirs() -> set[Path]:
    return set(Path("/dev/shm").glob("meterline-metrics-*")) | set(
        Path(tempfile.gettempdir()).glob("meterline-metrics-*")
    )


def _requests_counted(url: str) -> float:
    """The sum of ``meterline_requests_total`` in one scrape (one worker answers it)."""
    text = httpx.get(f"{url}/metrics", headers={"authorization": "Bearer mk-t"}).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "meterline_requests_total"
    )


def test_several_workers_without_redis_share_a_counters_file(tmp_path: Path) -> None:
    """Without Redis the workers share a counters file the parent makes (and removes at the
    end): a key's rate limit holds across them. Their metrics add up in every scrape, whichever
    worker answers it."""
    port, before, metrics_before = free_port(), _counter_files(), _metrics_dirs()
    proc = _serve(tmp_path, "--workers", "2", "--port", str(port), METERLINE_MASTER_KEY="mk-t")
    try:
        assert _wait_healthy(proc, port).status_code == 200
        made = _counter_files() - before
        assert len(made) == 1
        url, admin = f"http://127.0.0.1:{port}", {"authorization": "Bearer mk-t"}
        key = httpx.post(f"{url}/api/keys", json={"name": "w", "tenant": "t", "rpm": 3},
                         headers=admin).json()  # fmt: skip
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        statuses = [  # a connection each, so the kernel hands them to either worker
            httpx.post(f"{url}/v1/chat/completions", json=body,
                       headers={"authorization": f"Bearer {key['key']}"}).status_code
            for _ in range(12)
        ]  # fmt: skip
        assert statuses.count(429) == 9, statuses  # three admitted (with no provider: errors)
        assert len(_metrics_dirs() - metrics_before) == 1
        deadline = time.monotonic() + 10  # other workers' counts are up to a second old
        while (scrapes := [_requests_counted(url) for _ in range(6)]) != [12.0] * 6:
            assert time.monotonic() < deadline, scrapes
            time.sleep(0.3)
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert not made & _counter_files()
    assert not _metrics_dirs() - metrics_before


async def test_a_serving_app_tunes_the_collector_once_started(tmp_path: Path) -> None:
    """``meterline serve`` (and each of its workers, built by ``app_from_env``) freezes the
    start-up heap and raises the young generation's threshold after the gateway has started;
    an app built for embedding (or tests) leaves the collector alone."""
    from meterline.app import create_app
    from meterline.settings import LogSettings, Settings

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'a.db'}",
                        log=LogSettings(spill_dir=str(tmp_path / "spill")))  # fmt: skip
    before = gc.get_threshold()
    try:
        for server in (False, True):
            gc.unfreeze()
            app = create_app(settings, {}, server=server)
            async with app.router.lifespan_context(app):
                frozen, threshold = gc.get_freeze_count(), gc.get_threshold()
            assert (frozen > 0, threshold == (7_000, 20, 20)) == (server, server)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
