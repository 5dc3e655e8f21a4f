"""``model: "auto"`` through a live gateway with the official ``openai`` and ``anthropic`` SDKs:
the route and its reason, the classification on the log row, learning from the outcome,
aliases to ``auto:premium`` and ``/api/routing/explain`` (which never calls a model)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from meterline.catalog import Catalog
from meterline.settings import RoutingSettings, Settings
from meterline.sim import Fault, OpenAISim
from tests.conftest import make_settings
from tests.fakes.harness import BackgroundLoop, LiveGateway, start_gateway

QUESTION = "What is the capital of France?"
CODE_ASK = "Implement a small Python helper that reverses a linked list."
CATALOG = Catalog.builtin()
PREMIUM = {m.name for m in CATALOG.for_provider("openai") if m.tier == "premium"}


def _settings(tmp_path: Path, openai_sim: OpenAISim, compat_sim: OpenAISim) -> Settings:
    return make_settings(
        f"sqlite:///{tmp_path / 'route.db'}", openai_sim, compat_sim,
        aliases={"gpt-4": "auto:premium", "smart": "auto"},
        routing=RoutingSettings(exploration=0.0),  # deterministic: no random exploration
    )  # fmt: skip


@pytest.fixture
def routed(
    bg: BackgroundLoop, tmp_path: Path, openai_sim: OpenAISim, compat_sim: OpenAISim
) -> Iterator[LiveGateway]:
    live = start_gateway(bg, _settings(tmp_path, openai_sim, compat_sim))
    yield live
    live.stop()


@pytest.fixture
def oai(routed: LiveGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{routed.url}/v1", api_key="k", max_retries=0) as client:
        yield client


@pytest.fixture
def claude(routed: LiveGateway) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=routed.url, api_key="k", max_retries=0) as client:
        yield client


def _ask(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def _rows(live: LiveGateway) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in live.rows()}


def test_auto_routes_a_simple_question_to_the_cheapest_economy_model(
    routed: LiveGateway, oai: openai.OpenAI, openai_sim: OpenAISim
) -> None:
    raw = oai.chat.completions.with_raw_response.create(model="auto", messages=_ask(QUESTION))
    completion = raw.parse()
    assert completion.choices[0].message.content
    reason = raw.headers["x-meterline-route-reason"]
    assert (
        reason
        == "openai/gpt-4.1-nano: no proven model for simple_qa/low yet; low complexity -> cheapest economy"
    )
    assert (raw.headers["x-meterline-provider"], raw.headers["x-meterline-model"]) == (
        "openai",
        "gpt-4.1-nano",
    )
    assert [body["model"] for body in openai_sim.received] == ["gpt-4.1-nano"]

    row = _rows(routed)[raw.headers["x-meterline-request-id"]]
    assert (row["model_requested"], row["provider"], row["model"]) == (
        "auto",
        "openai",
        "gpt-4.1-nano",
    )
    assert row["task_type"] == "simple_qa" and 0 <= row["complexity"] < 34
    assert row["success"] is True and row["status"] == "ok"
    assert row["route_reason"].startswith(
        "openai/gpt-4.1-nano: no proven model for simple_qa/low yet"
    )
    record = routed.gateway.stats.get("simple_qa", "low", "openai:gpt-4.1-nano")
    assert (record.successes, record.total) == (1, 1)


def test_a_failed_heuristic_verdict_is_logged_and_learned(
    routed: LiveGateway, oai: openai.OpenAI
) -> None:
    # The simulator answers in words: a request for code gets no code, which is a failure.
    raw = oai.chat.completions.with_raw_response.create(model="auto", messages=_ask(CODE_ASK))
    row = _rows(routed)[raw.headers["x-meterline-request-id"]]
    assert row["status"] == "ok" and row["success"] is False
    assert row["task_type"] == "code_gen" and row["complexity"] < 34
    record = routed.gateway.stats.get("code_gen", "low", f"openai:{row['model']}")
    assert (record.successes, record.total) == (0, 1)


def test_three_upstream_failures_in_a_row_move_auto_traffic_elsewhere(
    oai: openai.OpenAI, routed: LiveGateway, openai_sim: OpenAISim
) -> None:
    # Poor answers (a request for code answered in words) teach the estimates, not the cool-down.
    for i in range(3):
        oai.chat.completions.create(model="auto", messages=_ask(f"{CODE_ASK} Variant {i}."))
    assert not routed.gateway.stats.cooling("openai:gpt-4.1-nano")
    # Three requests whose upstream fails (each retried three times) do cool it down.
    openai_sim.fail_next(*[Fault("http", 503)] * 9)
    for i in range(3):
        with pytest.raises(openai.InternalServerError):
            oai.chat.completions.create(model="auto", messages=_ask(f"{QUESTION} Take {i}."))
    assert routed.gateway.stats.cooling("openai:gpt-4.1-nano")
    raw = oai.chat.completions.with_raw_response.create(model="auto", messages=_ask(QUESTION))
    assert raw.headers["x-meterline-model"] == "gpt-4o-mini"  # the next cheapest economy model


def test_auto_streams_and_learns_from_the_streamed_answer(
    routed: LiveGateway, oai: openai.OpenAI
) -> None:
    with oai.chat.completions.with_streaming_response.create(
        model="auto", messages=_ask(QUESTION), stream=True
    ) as response:
        request_id = response.headers["x-meterline-request-id"]
        assert "no proven model for simple_qa/low" in response.headers["x-meterline-route-reason"]
        text = "".join(
            chunk.choices[0].delta.content or "" for chunk in response.parse() if chunk.choices
        )
    assert text.startswith("Re: What is the capital of France?")
    row = _rows(routed)[request_id]
    assert row["stream"] is True and row["task_type"] == "simple_qa" and row["success"] is True
    assert routed.gateway.stats.get("simple_qa", "low", "openai:gpt-4.1-nano").successes == 1


def test_auto_on_the_anthropic_surface(routed: LiveGateway, claude: anthropic.Anthropic) -> None:
    raw = claude.messages.with_raw_response.create(
        model="auto", max_tokens=300, messages=_ask(QUESTION)
    )
    message = raw.parse()
    assert message.content[0].type == "text" and message.content[0].text
    assert message.model == "gpt-4.1-nano"
    assert "no proven model for simple_qa/low yet" in raw.headers["x-meterline-route-reason"]
    row = _rows(routed)[raw.headers["x-meterline-request-id"]]
    assert (row["surface"], row["task_type"], row["success"]) == ("anthropic", "simple_qa", True)


def test_a_proven_model_is_preferred_and_named_in_the_reason(
    routed: LiveGateway, oai: openai.OpenAI
) -> None:
    for _ in range(30):
        routed.gateway.stats.record("simple_qa", "low", "openai:gpt-4.1-mini", True)
    raw = oai.chat.completions.with_raw_response.create(model="smart", messages=_ask(QUESTION))
    assert raw.headers["x-meterline-model"] == "gpt-4.1-mini"
    assert raw.headers["x-meterline-route-reason"] == (
        "openai/gpt-4.1-mini: 100% success over 30 simple_qa requests; worth its price over "
        "openai/gpt-4.1-nano (94% success expected from its other records)"
    )


@pytest.mark.parametrize("surface", ["openai", "anthropic"])
def test_alias_to_auto_premium_picks_a_premium_model(
    surface: str, routed: LiveGateway, oai: openai.OpenAI, claude: anthropic.Anthropic,
    openai_sim: OpenAISim,
) -> None:  # fmt: skip
    if surface == "openai":
        headers = oai.chat.completions.with_raw_response.create(
            model="gpt-4", messages=_ask(QUESTION)
        ).headers
    else:
        headers = claude.messages.with_raw_response.create(
            model="gpt-4", max_tokens=300, messages=_ask(QUESTION)
        ).headers
    model = headers["x-meterline-model"]
    assert model in PREMIUM
    assert openai_sim.received[-1]["model"] == model
    assert "cheapest premium" in headers["x-meterline-route-reason"]
    row = _rows(routed)[headers["x-meterline-request-id"]]
    assert (row["model_requested"], row["model"], row["task_type"]) == ("gpt-4", model, "simple_qa")


def test_premium_floor_holds_even_when_a_cheaper_model_is_proven(
    routed: LiveGateway, oai: openai.OpenAI
) -> None:
    for _ in range(30):
        routed.gateway.stats.record("simple_qa", "low", "openai:gpt-4.1-nano", True)
    assert (
        oai.chat.completions.with_raw_response.create(
            model="auto", messages=_ask(QUESTION)
        ).headers["x-meterline-model"]
        == "gpt-4.1-nano"
    )
    assert (
        oai.chat.completions.with_raw_response.create(
            model="gpt-4", messages=_ask(QUESTION)
        ).headers["x-meterline-model"]
        in PREMIUM
    )


def test_explain_get_classifies_and_decides_without_calling_a_model(
    routed: LiveGateway, openai_sim: OpenAISim, compat_sim: OpenAISim
) -> None:
    resp = httpx.get(f"{routed.url}/api/routing/explain", params={"prompt": CODE_ASK}, timeout=10)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    c = body["classification"]
    assert (c["task_type"], c["band"], c["language"]) == ("code_gen", "low", "python")
    assert c["complexity"] < 34 and "keyword:implement" in c["signals"]
    assert body["route"] == {
        "provider": "openai", "model": "gpt-4.1-nano", "tier": "economy",
        "reason": "openai/gpt-4.1-nano: no proven model for code_gen/low yet; low complexity -> cheapest economy",
    }  # fmt: skip
    names = [cand["model"] for cand in body["candidates"]]
    assert names[0] == "openai:gpt-4.1-nano" and len(names) == len(CATALOG.for_provider("openai"))
    first = body["candidates"][0]
    assert first["judged"] == 0 and first["cooling_down"] is False
    assert first["expected_success"] == 0.9  # no evidence anywhere: the default 10% failures
    assert first["price_per_mtok_usd"] == {"input": "0.1", "output": "0.4"}
    assert openai_sim.received == [] and compat_sim.received == []
    assert _rows(routed) == {}  # an explanation is not a request


def test_explain_post_takes_a_chat_request_and_honours_aliases(
    routed: LiveGateway, openai_sim: OpenAISim, compat_sim: OpenAISim
) -> None:
    for _ in range(25):
        routed.gateway.stats.record("simple_qa", "low", "openai:gpt-4.1-nano", True)
    url = f"{routed.url}/api/routing/explain"
    auto = httpx.post(url, json={"messages": _ask(QUESTION)}, timeout=10).json()
    assert auto["classification"]["task_type"] == "simple_qa"
    assert auto["route"]["model"] == "gpt-4.1-nano"
    assert (
        auto["route"]["reason"]
        == "openai/gpt-4.1-nano: cheapest economy, 100% success over 25 simple_qa requests"
    )
    judged = {cand["model"]: cand for cand in auto["candidates"]}["openai:gpt-4.1-nano"]
    assert (judged["judged"], judged["success_rate"]) == (25, 1.0) and judged[
        "success_lower_bound"
    ] > 0.8
    # 25 perfect answers pull the estimate up; a model with none here leans on the pooled fit
    other = {cand["model"]: cand for cand in auto["candidates"]}["openai:gpt-4o-mini"]
    assert 0.9 < other["expected_success"] < judged["expected_success"] < 1.0

    premium = httpx.post(
        url, json={"model": "gpt-4", "messages": _ask(QUESTION)}, timeout=10
    ).json()
    assert premium["route"]["tier"] == "premium" and premium["route"]["model"] in PREMIUM
    explicit = httpx.get(url, params={"prompt": QUESTION, "model": "gpt-4o"}, timeout=10).json()
    assert explicit["route"]["model"] == "gpt-4o" and explicit["route"]["reason"].startswith(
        "catalog"
    )
    assert openai_sim.received == [] and compat_sim.received == []


def test_explain_needs_a_prompt(routed: LiveGateway) -> None:
    resp = httpx.get(f"{routed.url}/api/routing/explain", timeout=10)
    assert resp.status_code == 400
    assert "prompt" in resp.json()["error"]["message"]


def test_route_stats_are_rebuilt_from_the_log_after_a_restart(
    bg: BackgroundLoop, tmp_path: Path, openai_sim: OpenAISim, compat_sim: OpenAISim
) -> None:
    live = start_gateway(bg, _settings(tmp_path, openai_sim, compat_sim))
    try:
        with openai.OpenAI(base_url=f"{live.url}/v1", api_key="k", max_retries=0) as client:
            for i in range(2):
                client.chat.completions.create(model="auto", messages=_ask(f"{QUESTION} ({i})"))
            client.chat.completions.create(model="auto", messages=_ask(CODE_ASK))
        live.flush()
    finally:
        live.stop()
    again = start_gateway(bg, _settings(tmp_path, openai_sim, compat_sim))
    try:
        qa = again.gateway.stats.get("simple_qa", "low", "openai:gpt-4.1-nano")
        code = again.gateway.stats.get("code_gen", "low", "openai:gpt-4.1-nano")
        assert (qa.successes, qa.total, code.successes, code.total) == (2, 2, 0, 1)
    finally:
        again.stop()
