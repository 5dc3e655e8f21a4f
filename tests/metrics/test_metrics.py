"""``GET /metrics``: what the request log records, counted as requests end, in Prometheus's
text format (checked with Prometheus's own parser), for the master key only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from meterline.metrics import Metrics, merged, render
from meterline.settings import CacheSettings, LogSettings, ProviderSettings, Settings
from meterline.sim import OpenAISim, SimSettings
from tests.fakes.harness import BackgroundLoop, LiveGateway, start_gateway

MASTER = "mk-metrics"


def _row(**changes: Any) -> dict[str, Any]:
    row = {"surface": "openai", "provider": "openai", "model": "gpt-4o-mini", "status": "ok",
           "cache_hit": False, "stream": False, "input_tokens": 10, "output_tokens": 5,
           "cached_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0,
           "cost_pusd": 4_500_000, "latency_ms": 30.0, "ttft_ms": None}  # fmt: skip
    return {**row, **changes}


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_rows_become_prometheus_samples() -> None:
    metrics = Metrics(lambda: {"log_queue_rows": 2})
    metrics.observe(_row())
    metrics.observe(_row(stream=True, latency_ms=700.0, ttft_ms=40.0, reasoning_tokens=3))
    metrics.observe(_row(status="error", provider=None, model=None, input_tokens=0,
                         output_tokens=0, cost_pusd=0))  # fmt: skip
    samples = _samples(render(metrics.snapshot()))
    ok = frozenset({("surface", "openai"), ("provider", "openai"), ("model", "gpt-4o-mini"),
                    ("status", "ok"), ("cache_hit", "false")})  # fmt: skip
    assert samples[("meterline_requests_total", ok)] == 2
    failed = frozenset({("surface", "openai"), ("provider", ""), ("model", ""),
                        ("status", "error"), ("cache_hit", "false")})  # fmt: skip
    assert samples[("meterline_requests_total", failed)] == 1
    tokens = frozenset({("provider", "openai"), ("model", "gpt-4o-mini")})
    assert samples[("meterline_tokens_total", tokens | {("type", "output")})] == 10
    assert samples[("meterline_tokens_total", tokens | {("type", "reasoning")})] == 3
    assert samples[("meterline_cost_usd_total", tokens)] == pytest.approx(9e-6)
    plain = frozenset({("surface", "openai"), ("stream", "false")})
    assert samples[("meterline_request_duration_seconds_count", plain)] == 2
    assert samples[("meterline_request_duration_seconds_bucket", plain | {("le", "0.05")})] == 2
    streamed = frozenset({("surface", "openai"), ("stream", "true")})
    assert samples[("meterline_request_duration_seconds_bucket", streamed | {("le", "0.5")})] == 0
    assert samples[("meterline_request_duration_seconds_bucket", streamed | {("le", "1.0")})] == 1
    assert samples[("meterline_request_duration_seconds_sum", streamed)] == pytest.approx(0.7)
    assert (
        samples[("meterline_time_to_first_token_seconds_count", frozenset({("surface", "openai")}))]
        == 1
    )
    assert samples[("meterline_log_queue_rows", frozenset())] == 2


def test_label_values_are_escaped() -> None:
    metrics = Metrics()
    metrics.observe(_row(model='odd "name"\\with\nbreaks'))
    samples = _samples(render(metrics.snapshot()))
    models = {dict(labels).get("model") for _, labels in samples}
    assert 'odd "name"\\with\nbreaks' in models


def test_workers_snapshots_add_up() -> None:
    one, two = Metrics(lambda: {"log_rows_written": 4}), Metrics(lambda: {"log_rows_written": 6})
    one.observe(_row())
    two.observe(_row())
    two.observe(_row(stream=True, ttft_ms=5.0))
    samples = _samples(render(merged([one.snapshot(), two.snapshot()])))
    ok = frozenset({("surface", "openai"), ("provider", "openai"), ("model", "gpt-4o-mini"),
                    ("status", "ok"), ("cache_hit", "false")})  # fmt: skip
    assert samples[("meterline_requests_total", ok)] == 3
    assert samples[("meterline_log_rows_written_total", frozenset())] == 10
    plain = frozenset({("surface", "openai"), ("stream", "false")})
    assert samples[("meterline_request_duration_seconds_count", plain)] == 2


@pytest.fixture(scope="module")
def live(bg: BackgroundLoop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    sim = OpenAISim(SimSettings(api_key="k"))
    bg.run(sim.start())
    db = tmp_path_factory.mktemp("metrics") / "gw.db"
    settings = Settings(
        database_url=f"sqlite:///{db}", master_key=MASTER, cache=CacheSettings(enabled=False),
        providers=(ProviderSettings(name="openai", type="openai", base_url=sim.base_url,
                                    api_key="k"),),
        log=LogSettings(flush_interval=0.05),
    )  # fmt: skip
    live = start_gateway(bg, settings)
    yield live
    live.stop()
    bg.run(sim.stop())


def test_metrics_match_the_request_log(live: LiveGateway) -> None:
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key=MASTER, max_retries=0) as client:
        for i in range(3):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"Hi {i}"}]
            )
        list(client.chat.completions.create(
            model="gpt-4o-mini", stream=True, messages=[{"role": "user", "content": "Hi s"}]
        ))  # fmt: skip
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(
                model="no-such-model", messages=[{"role": "user", "content": "x"}]
            )
    rows = live.rows(MASTER)
    scraped = httpx.get(f"{live.url}/metrics", headers={"authorization": f"Bearer {MASTER}"})
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = _samples(scraped.text)

    def total(name: str, **labels: str) -> float:
        return sum(v for (n, ls), v in samples.items()
                   if n == name and labels.items() <= dict(ls).items())  # fmt: skip

    assert total("meterline_requests_total") == len(rows) == 5
    assert total("meterline_requests_total", status="ok", model="gpt-4o-mini") == 4
    assert total("meterline_requests_total", status="error") == 1
    assert total("meterline_tokens_total", type="input") == sum(r["input_tokens"] for r in rows)
    assert total("meterline_tokens_total", type="output") == sum(r["output_tokens"] for r in rows)
    cost = sum(float(r["cost_usd"]) for r in rows)
    assert total("meterline_cost_usd_total") == pytest.approx(cost) and cost > 0
    assert total("meterline_request_duration_seconds_count", stream="true") == 1
    assert total("meterline_time_to_first_token_seconds_count") == 1
    assert total("meterline_log_rows_written_total") == 5


def test_metrics_need_the_master_key(live: LiveGateway) -> None:
    assert httpx.get(f"{live.url}/metrics").status_code == 401
    key = httpx.post(f"{live.url}/api/keys", headers={"authorization": f"Bearer {MASTER}"},
                     json={"name": "m", "tenant": "t"}).json()["key"]  # fmt: skip
    refused = httpx.get(f"{live.url}/metrics", headers={"authorization": f"Bearer {key}"})
    assert refused.status_code == 403  # the counts span every tenant
