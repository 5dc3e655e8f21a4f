"""A/B experiments: traffic split by weight, arms on the log rows, per-arm report with a
significance estimate."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from meterline.routing.experiments import ArmStats, one_sided_p
from meterline.sim import OpenAISim
from tests.conftest import make_settings
from tests.fakes.harness import BackgroundLoop, LiveGateway, start_gateway


@pytest.fixture
def live(bg: BackgroundLoop, tmp_path: Path, openai_sim: OpenAISim) -> Iterator[LiveGateway]:
    gateway = start_gateway(bg, make_settings(f"sqlite:///{tmp_path / 'e.db'}", openai_sim))
    yield gateway
    gateway.stop()


def test_significance_estimate() -> None:
    same = ArmStats(100, 100, 80, 0, 0.0)
    assert one_sided_p(same, same) == pytest.approx(0.5)
    assert one_sided_p(ArmStats(200, 200, 120, 0, 0.0), ArmStats(200, 200, 170, 0, 0.0)) < 0.001
    assert one_sided_p(ArmStats(200, 200, 170, 0, 0.0), ArmStats(200, 200, 120, 0, 0.0)) > 0.99
    assert one_sided_p(ArmStats(0, 0, 0, 0, 0.0), same) == 1.0


def test_experiment_splits_traffic_and_reports_arms(live: LiveGateway) -> None:
    created = httpx.post(f"{live.url}/api/experiments", json={
        "match": "fast", "baseline": "openai:gpt-4.1-nano", "challenger": "openai:gpt-4o-mini",
        "weight": 0.5})  # fmt: skip
    assert created.status_code == 201 and created.json()["status"] == "running"
    exp_id = created.json()["id"]
    live.gateway.experiments.rng = random.Random(3)  # type: ignore[union-attr]
    models = []
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key="k", max_retries=0) as client:
        for i in range(40):
            raw = client.chat.completions.with_raw_response.create(
                model="fast", messages=[{"role": "user", "content": f"Say hello #{i}"}]
            )  # type: ignore[arg-type]
            models.append(raw.headers["x-meterline-model"])
            assert raw.headers["x-meterline-route-reason"].startswith(f"experiment {exp_id}")
    assert 10 <= models.count("gpt-4o-mini") <= 30 and set(models) == {
        "gpt-4o-mini",
        "gpt-4.1-nano",
    }
    live.flush()
    report = next(
        e for e in httpx.get(f"{live.url}/api/experiments").json()["data"] if e["id"] == exp_id
    )
    arms = report["arms"]
    assert arms["challenger"]["requests"] == models.count("gpt-4o-mini")
    assert arms["baseline"]["requests"] == models.count("gpt-4.1-nano")
    assert arms["baseline"]["judged"] == arms["baseline"]["requests"]
    assert 0 <= report["p_value_challenger_better"] <= 1
    rows = httpx.get(f"{live.url}/api/requests", params={"limit": 100}).json()["data"]
    assert {(r["experiment"], r["arm"]) for r in rows} == {
        (exp_id, "baseline"),
        (exp_id, "challenger"),
    }
    stopped = httpx.delete(f"{live.url}/api/experiments/{exp_id}")
    assert stopped.json() == {"id": exp_id, "status": "stopped"}


def test_bad_experiments_are_refused(live: LiveGateway) -> None:
    bad = httpx.post(f"{live.url}/api/experiments", json={
        "match": "code_gen", "baseline": "openai:gpt-4o-mini", "challenger": "nope:model"})  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "challenger"
    weight = httpx.post(f"{live.url}/api/experiments", json={
        "match": "code_gen", "baseline": "openai:gpt-4o-mini", "challenger": "openai:gpt-4o",
        "weight": 1.5})  # fmt: skip
    assert weight.status_code == 400 and weight.json()["error"]["param"] == "weight"


async def test_a_challenger_that_is_better_with_confidence_is_promoted(tmp_path: Path) -> None:
    import datetime as dt

    from meterline.routing.experiments import Experiments
    from meterline.settings import LogSettings
    from meterline.store import LogWriter, open_engine

    engine = await open_engine(f"sqlite:///{tmp_path / 'p.db'}")
    writer = LogWriter(engine, LogSettings(), tmp_path)
    writer.start()
    experiments = Experiments(engine, random.Random(1))
    try:
        exp = await experiments.create(
            "code_gen", "openai:gpt-4.1-nano", "openai:gpt-4o-mini", 0.5, True
        )
        outcomes = {"baseline": [True] * 60 + [False] * 40, "challenger": [True] * 92 + [False] * 8}
        for arm, results in outcomes.items():
            for i, ok in enumerate(results):
                writer.submit({
                    "id": f"{arm[:4]}{i:04d}", "created_at": dt.datetime.now(dt.UTC), "tenant": "default",
                    "key_id": None, "surface": "openai", "provider": "openai", "model_requested": "auto",
                    "model": "m", "route_reason": "", "status": "ok", "http_status": 200, "error": None,
                    "stream": False, "finish_reason": "stop", "input_tokens": 1, "output_tokens": 1,
                    "cached_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0,
                    "usage_estimated": False, "cost_pusd": 10, "latency_ms": 1.0, "ttft_ms": None,
                    "metadata": None, "team": None, "user": None, "budget_remaining_pusd": None,
                    "cache_hit": False, "tokens_before": None, "tokens_after": None, "compression": None,
                    "request_group_id": None, "attempt": 1, "experiment": exp.id, "arm": arm,
                    "success": ok, "task_type": "code_gen", "complexity": 10, "language": None,
                    "stack": None, "domain": None,
                })  # fmt: skip
        await writer.flush()
        report = await experiments.report(exp)
        assert report["challenger_better_with_confidence"] is True
        assert report["p_value_challenger_better"] < 0.05
        assert report["status"] == "promoted"
        promoted = experiments.match("code_gen", "auto")
        assert promoted is not None and all(
            experiments.assign(promoted)[0] == "challenger" for _ in range(20)
        )
    finally:
        await writer.close()
        await engine.dispose()
