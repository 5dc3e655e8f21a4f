"""The Gemini provider, driven through a live gateway with the official ``openai`` SDK against the
simulated Gemini API over real sockets."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from meterline.catalog import Catalog, cost, to_usd
from meterline.providers.gemini import GeminiProvider
from meterline.settings import (
    ProviderSettings,
)
from meterline.sim import Fault, SimSettings
from meterline.sim.gemini import GEMINI_MODELS, GeminiSim
from meterline.types import Usage
from tests.fakes.harness import BackgroundLoop, LiveGateway, provider_settings, start_gateway

KEY = "AIza-sim-test-key"
SYSTEM: Any = {"role": "system", "content": "You are terse."}
USER: Any = {"role": "user", "content": "What is a gateway?"}
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "search_docs",
            "description": "Search the docs",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    }
]


@pytest.fixture(scope="module")
def sim(bg: BackgroundLoop) -> Iterator[GeminiSim]:
    sim = GeminiSim(SimSettings(models=GEMINI_MODELS, api_key=KEY))
    bg.run(sim.start())
    yield sim
    bg.run(sim.stop())


def _start(bg: BackgroundLoop, tmp_path: Path, sim: GeminiSim, key: str = KEY) -> LiveGateway:
    provider = ProviderSettings(name="gemini", type="gemini", base_url=sim.base_url, api_key=key)
    return start_gateway(bg, provider_settings(tmp_path, provider))


@pytest.fixture
def live(bg: BackgroundLoop, tmp_path: Path, sim: GeminiSim) -> Iterator[LiveGateway]:
    sim.faults.clear()
    sim.received.clear()
    sim.received_paths.clear()
    sim.received_headers.clear()
    gateway = _start(bg, tmp_path, sim)
    yield gateway
    gateway.stop()


@pytest.fixture
def client(live: LiveGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key="client-key", max_retries=0) as client:
        yield client


def _priced(model: str, usage: Any) -> Decimal:
    info = Catalog.builtin().get("gemini", model)
    assert info is not None and not info.price.is_free
    details = usage.prompt_tokens_details
    exact = cost(
        Usage(
            usage.prompt_tokens,
            usage.completion_tokens,
            cached_tokens=details.cached_tokens if details else 0,
            reasoning_tokens=usage.completion_tokens_details.reasoning_tokens,
        ),
        info.price,
    )
    return to_usd(exact)


def test_text_answer_system_prompt_and_history_reach_gemini(
    client: openai.OpenAI, sim: GeminiSim
) -> None:
    history = [SYSTEM, {"role": "user", "content": "Hi"},
               {"role": "assistant", "content": "Hello."}, USER]  # fmt: skip
    raw = client.chat.completions.with_raw_response.create(
        model="gemini-2.5-flash",
        messages=history,
        max_tokens=200,
        temperature=0.3,
    )
    completion = raw.parse()
    assert raw.headers["x-meterline-provider"] == "gemini"
    assert completion.choices[0].message.content.startswith("Re: What is a gateway?")  # type: ignore[union-attr]
    assert completion.choices[0].finish_reason == "stop"
    assert sim.received_paths[-1] == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sim.received_headers[-1]["x-goog-api-key"] == KEY
    sent = sim.received[-1]
    assert sent["systemInstruction"] == {"parts": [{"text": "You are terse."}]}
    assert [(c["role"], c["parts"][0]["text"]) for c in sent["contents"]] == [
        ("user", "Hi"), ("model", "Hello."), ("user", "What is a gateway?")
    ]  # fmt: skip
    assert sent["generationConfig"] == {"maxOutputTokens": 200, "temperature": 0.3}


def test_streaming_matches_non_streaming_with_one_usage_chunk(
    client: openai.OpenAI, sim: GeminiSim
) -> None:
    messages: Any = [SYSTEM, USER]
    whole = client.chat.completions.create(model="gemini-2.5-flash", messages=messages)
    completed = sim.completed_streams
    stream = client.chat.completions.create(
        model="gemini-2.5-flash", messages=messages, stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream)
    assert sim.received_paths[-1] == (
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    usages = [c.usage for c in chunks if c.usage is not None]
    assert len(usages) == 1 and usages[0] == whole.usage
    assert sim.completed_streams == completed + 1


def test_tool_call_and_tool_result_round_trip(client: openai.OpenAI, sim: GeminiSim) -> None:
    completion = client.chat.completions.create(
        model="gemini-2.5-flash", messages=[USER], tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "search_docs"}},
    )  # fmt: skip
    call: Any = (completion.choices[0].message.tool_calls or [])[0]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "search_docs"
    assert json.loads(call.function.arguments) == {"query": "What is a gateway?", "limit": 3}
    sent = sim.received[-1]
    assert sent["tools"][0]["functionDeclarations"][0]["name"] == "search_docs"
    assert sent["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["search_docs"]}
    }

    follow_up: Any = [
        USER,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "Gateways route requests."},
    ]
    answer = client.chat.completions.create(
        model="gemini-2.5-flash", messages=follow_up, tools=TOOLS
    )
    assert answer.choices[0].finish_reason == "stop" and answer.choices[0].message.content
    contents = sim.received[-1]["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [
            {"functionCall": {"name": "search_docs", "args": json.loads(call.function.arguments)}}
        ],
    }
    assert contents[2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "search_docs",
                                        "response": {"output": "Gateways route requests."}}}],
    }  # fmt: skip


def test_streamed_tool_call_arrives_whole(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gemini-2.5-flash", messages=[USER], tools=TOOLS, stream=True
    )
    deltas = [d for c in stream if c.choices for d in c.choices[0].delta.tool_calls or []]
    assert len(deltas) == 1
    assert deltas[0].function.name == "search_docs"  # type: ignore[union-attr]
    assert json.loads(deltas[0].function.arguments)["limit"] == 3  # type: ignore[union-attr,arg-type]


def test_inline_image_and_json_mode(client: openai.OpenAI, sim: GeminiSim) -> None:
    image = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="  # noqa: E501
    completion = client.chat.completions.create(
        model="gemini-2.5-flash-lite",
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "Describe this"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}},
        ]}],
        response_format={"type": "json_object"},
    )  # fmt: skip
    assert json.loads(completion.choices[0].message.content or "") == {
        "answer": "Describe this", "confidence": 0.9
    }  # fmt: skip
    sent = sim.received[-1]
    assert sent["contents"][0]["parts"] == [
        {"text": "Describe this"},
        {"inlineData": {"mimeType": "image/png", "data": image}},
    ]
    assert sent["generationConfig"] == {"responseMimeType": "application/json"}


def test_log_rows_price_thoughts_and_cache_hits_exactly(
    client: openai.OpenAI, live: LiveGateway, sim: GeminiSim
) -> None:
    sent_before = len(sim.usage_sent)
    pro = client.chat.completions.create(model="gemini-2.5-pro", messages=[USER])
    long_prompt: Any = [{"role": "user", "content": "Read the design notes. " * 400 + "Summary?"}]
    client.chat.completions.create(model="gemini-2.5-flash", messages=long_prompt)
    cached = client.chat.completions.create(model="gemini-2.5-flash", messages=long_prompt)
    assert pro.usage is not None and cached.usage is not None
    pro_usage: Any = pro.usage
    cached_usage: Any = cached.usage
    assert pro_usage.completion_tokens_details.reasoning_tokens > 0
    assert cached_usage.prompt_tokens_details.cached_tokens > 0
    # Gemini's promptTokenCount includes the cache hits; candidatesTokenCount excludes thoughts.
    google = sim.usage_sent[sent_before:]
    for usage, meta in [(pro_usage, google[0]), (cached_usage, google[2])]:
        assert usage.prompt_tokens == meta["promptTokenCount"]
        assert usage.completion_tokens == meta["candidatesTokenCount"] + meta["thoughtsTokenCount"]
        assert usage.completion_tokens_details.reasoning_tokens == meta["thoughtsTokenCount"]
        assert usage.prompt_tokens_details.cached_tokens == meta.get("cachedContentTokenCount", 0)
    assert "cachedContentTokenCount" in google[2]

    rows = live.rows()
    assert [r["model"] for r in rows] == ["gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash"]
    for row, (model, usage) in zip(
        [rows[0], rows[2]], [("gemini-2.5-pro", pro.usage), ("gemini-2.5-flash", cached.usage)],
        strict=True,
    ):  # fmt: skip
        assert row["provider"] == "gemini" and row["status"] == "ok"
        assert (row["input_tokens"], row["output_tokens"]) == (
            usage.prompt_tokens, usage.completion_tokens
        )  # fmt: skip
        assert row["reasoning_tokens"] == usage.completion_tokens_details.reasoning_tokens  # type: ignore[union-attr]
        assert row["cached_tokens"] == usage.prompt_tokens_details.cached_tokens  # type: ignore[union-attr]
        assert row["usage_estimated"] is False
        assert Decimal(row["cost_usd"]) == _priced(model, usage)
    assert rows[1]["cached_tokens"] == 0 < rows[2]["cached_tokens"]
    assert Decimal(rows[2]["cost_usd"]) < Decimal(rows[1]["cost_usd"])


def test_streamed_request_is_logged_with_upstream_usage(
    client: openai.OpenAI, live: LiveGateway
) -> None:
    whole = client.chat.completions.create(model="gemini-2.5-pro", messages=[USER])
    list(client.chat.completions.create(model="gemini-2.5-pro", messages=[USER], stream=True))
    streamed = live.rows()[-1]
    assert whole.usage is not None
    assert streamed["stream"] is True and streamed["usage_estimated"] is False
    assert (streamed["input_tokens"], streamed["output_tokens"]) == (
        whole.usage.prompt_tokens, whole.usage.completion_tokens
    )  # fmt: skip
    assert Decimal(streamed["cost_usd"]) == _priced("gemini-2.5-pro", whole.usage)


def test_rate_limit_keeps_googles_retry_delay(client: openai.OpenAI, sim: GeminiSim) -> None:
    # RetryInfo says 30 s, beyond backoff_max, so the 429 goes straight back to the client.
    sim.fail_next(Fault("http", 429, retry_after=30))
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gemini-2.5-flash", messages=[USER])
    assert info.value.response.headers["retry-after"] == "30"
    assert len(sim.received) == 1


def test_transient_failures_are_retried(client: openai.OpenAI, sim: GeminiSim) -> None:
    sim.fail_next(Fault("http", 500), Fault("http", 429, retry_after=0.05))
    completion = client.chat.completions.create(model="gemini-2.5-flash", messages=[USER])
    assert completion.choices[0].message.content
    assert len(sim.received) == 3


def test_5xx_after_retries_is_502_with_googles_message(
    client: openai.OpenAI, sim: GeminiSim
) -> None:
    sim.fail_next(*[Fault("http", 503)] * 3)
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="gemini-2.5-flash", messages=[USER], stream=True)
    assert info.value.status_code == 502
    assert "The model is overloaded" in info.value.message
    assert len(sim.received) == 3


def test_unknown_model_is_404(client: openai.OpenAI, sim: GeminiSim) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gemini:gemini-9-ultra", messages=[USER])
    assert "models/gemini-9-ultra is not found" in info.value.message
    assert len(sim.received) == 1


def test_invalid_key_is_an_upstream_auth_error_not_retried(
    bg: BackgroundLoop, tmp_path: Path, sim: GeminiSim
) -> None:
    sim.received.clear()
    live = _start(bg, tmp_path, sim, key="AIza-wrong")
    try:
        client = openai.OpenAI(base_url=f"{live.url}/v1", api_key="k", max_retries=0)
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="gemini-2.5-flash", messages=[USER])
    finally:
        live.stop()
    assert info.value.status_code == 502
    assert "rejected the gateway's credentials: API key not valid" in info.value.message
    assert len(sim.received) == 1


def test_abandoned_stream_cancels_the_upstream_call(bg: BackgroundLoop, tmp_path: Path) -> None:
    slow = GeminiSim(SimSettings(models=GEMINI_MODELS, api_key=KEY, per_token=0.05))
    bg.run(slow.start())
    live = _start(bg, tmp_path, slow)
    try:
        body = {"model": "gemini-2.5-flash", "messages": [USER], "stream": True}
        with httpx.stream("POST", f"{live.url}/v1/chat/completions", json=body, timeout=10) as r:
            next(r.iter_raw())
        deadline = time.monotonic() + 5
        while slow.cancelled_streams == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert slow.cancelled_streams == 1 and slow.completed_streams == 0
        assert live.rows()[-1]["status"] == "cancelled"
    finally:
        live.stop()
        bg.run(slow.stop())


def test_models_and_discovery(client: openai.OpenAI, live: LiveGateway) -> None:
    listed = {m.id: m.owned_by for m in client.models.list()}
    assert {name: listed.get(name) for name in GEMINI_MODELS} == dict.fromkeys(
        GEMINI_MODELS, "gemini"
    )
    provider = live.gateway.providers.get("gemini")
    assert isinstance(provider, GeminiProvider)
    assert live.loop.run(provider.discover()) == list(GEMINI_MODELS)


def test_sim_frames_and_errors_like_google(sim: GeminiSim) -> None:
    url = f"{sim.base_url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    body = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}
    resp = httpx.post(url, json=body, headers={"x-goog-api-key": KEY}, timeout=10)
    assert resp.headers["content-type"] == "text/event-stream"
    frames = resp.text.split("\r\n\r\n")
    assert frames[-1] == "" and all(f.startswith("data: {") for f in frames[:-1])
    events = [json.loads(f.removeprefix("data: ")) for f in frames[:-1]]
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"
    assert events[-1]["usageMetadata"]["thoughtsTokenCount"] > 0
    assert len({e["responseId"] for e in events}) == 1

    missing = httpx.post(url, json=body, timeout=10)
    assert missing.status_code == 403 and missing.json()["error"]["status"] == "PERMISSION_DENIED"
    wrong = httpx.post(url, json=body, params={"key": "nope"}, timeout=10).json()["error"]
    assert (wrong["code"], wrong["status"]) == (400, "INVALID_ARGUMENT")
    assert wrong["details"][0]["reason"] == "API_KEY_INVALID"
