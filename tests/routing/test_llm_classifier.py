"""Background LLM classification: backfills the row, logs its own spend, stays within its
share of traffic, and shrugs off failures."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from meterline.routing.llm_classifier import INSTRUCTIONS, parse_verdict
from meterline.settings import LLMClassifierSettings, RoutingSettings
from meterline.sim import Fault, OpenAISim
from tests.conftest import make_settings
from tests.fakes.harness import BackgroundLoop, LiveGateway, start_gateway

VERDICT = '{"task_type": "debug", "complexity": 72, "language": "Rust", "stack": "tokio", "domain": "infra"}'
ASK = [{"role": "user", "content": "Why does my service hang under load?"}]


def _live(bg: BackgroundLoop, tmp_path: Path, sim: OpenAISim, share: float) -> LiveGateway:
    routing = RoutingSettings(llm_classifier=LLMClassifierSettings(enabled=True, model="openai:gpt-4.1-nano",
                                                                   max_share=share))  # fmt: skip
    return start_gateway(bg, make_settings(f"sqlite:///{tmp_path / 'l.db'}", sim, routing=routing))


@pytest.fixture
def live(bg: BackgroundLoop, tmp_path: Path, openai_sim: OpenAISim) -> Iterator[LiveGateway]:
    gateway = _live(bg, tmp_path, openai_sim, share=1.0)
    yield gateway
    gateway.stop()


def _settled(live: LiveGateway, expected_rows: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        live.call(lambda g: g.llm_classifier.drain())  # type: ignore[union-attr]
        live.flush()
        rows = httpx.get(f"{live.url}/api/requests", params={"limit": 100}).json()["data"]
        if len(rows) >= expected_rows or time.monotonic() > deadline:
            return rows  # type: ignore[no-any-return]
        time.sleep(0.05)


def test_parse_verdict() -> None:
    assert parse_verdict(f"Sure! {VERDICT}") == {"task_type": "debug", "complexity": 72, "language": "rust",
                                                 "stack": "tokio", "domain": "infra"}  # fmt: skip
    assert parse_verdict('{"task_type": "poetry", "complexity": 5}') is None
    assert parse_verdict('{"task_type": "debug", "complexity": "high"}') is None
    assert parse_verdict("no json here") is None
    assert parse_verdict('{"task_type": "other", "complexity": 400}')["complexity"] == 100  # type: ignore[index]


def test_the_row_is_backfilled_and_the_call_is_the_gateways_own_spend(
    live: LiveGateway, openai_sim: OpenAISim
) -> None:
    openai_sim.say_next("It blocks the executor.", VERDICT)  # the answer, then the verdict
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key="k", max_retries=0) as client:
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=ASK)  # type: ignore[arg-type]
    request_id = raw.headers["x-meterline-request-id"]
    rows = _settled(live, 2)
    row = next(r for r in rows if r["id"] == request_id)
    assert (row["task_type"], row["complexity"], row["language"], row["stack"], row["domain"]) == (
        "debug", 72, "rust", "tokio", "infra")  # fmt: skip
    own = next(r for r in rows if r["tenant"] == "meterline")
    assert own["model"] == "gpt-4.1-nano" and own["metadata"] == {
        "purpose": "classification",
        "for": request_id,
    }
    assert float(own["cost_usd"]) > 0
    sent = openai_sim.received[-1]
    assert sent["messages"][0]["content"] == [
        {"type": "text", "text": INSTRUCTIONS}
    ]  # marked for caching
    assert sent["response_format"] == {"type": "json_object"}
    assert "Why does my service hang" in sent["messages"][1]["content"]


def test_its_spend_stays_within_its_share(
    bg: BackgroundLoop, tmp_path: Path, openai_sim: OpenAISim
) -> None:
    live = _live(bg, tmp_path, openai_sim, share=0.0001)
    try:
        with openai.OpenAI(base_url=f"{live.url}/v1", api_key="k", max_retries=0) as client:
            for i in range(6):
                openai_sim.say_next("Rust hangs when the executor blocks.", VERDICT)
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": f"Why {i}?"}]
                )  # type: ignore[arg-type]
                live.call(lambda g: g.llm_classifier.drain())  # type: ignore[union-attr]
        classifier = live.gateway.llm_classifier
        assert classifier is not None
        assert classifier.classified == 1  # the first call used up the share for a while
        assert classifier.own_spend > 0.0001 * classifier.traffic_spend
    finally:
        live.stop()


def test_a_failing_classifier_is_ignored(live: LiveGateway, openai_sim: OpenAISim) -> None:
    openai_sim.fail_next(Fault("ok"), *[Fault("http", 500)] * 3)  # the answer, then failures
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key="k", max_retries=0) as client:
        answer = client.chat.completions.create(model="gpt-4o", messages=ASK)  # type: ignore[arg-type]
    assert answer.choices[0].message.content
    rows = _settled(live, 1)
    assert [r["tenant"] for r in rows] == ["default"] and rows[0][
        "task_type"
    ] is not None  # heuristic kept
