"""The Anthropic provider behind the OpenAI surface: the official ``openai`` SDK talks to a live
gateway whose provider ``anthropic`` is the simulated Anthropic API, over real sockets. The
simulator itself is checked against the official ``anthropic`` SDK at the end."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from aiohttp import web

from meterline.catalog import Catalog, cost, to_usd
from meterline.errors import UpstreamConnectionError, UpstreamUnavailable
from meterline.providers import PROVIDER_TYPES, ProviderDeps, ProviderRegistry
from meterline.providers.anthropic import AnthropicProvider, anthropic_extra
from meterline.providers.upstream import UpstreamPool
from meterline.settings import (
    ProviderSettings,
)
from meterline.sim.anthropic import ANTHROPIC_MODELS, AnthropicSim, ErrorEvent
from meterline.sim.openai import Fault, SimSettings
from meterline.tokens import count_text
from meterline.types import ChatChunk, ChatRequest, Message, TextPart, Usage
from tests.fakes.harness import BackgroundLoop, LiveGateway, provider_settings, start_gateway

KEY = "sk-ant-test"
MODEL = "claude-sonnet-4-5"
SDK_MODEL = "claude-haiku-4-5"  # the anthropic SDK warns about claude-sonnet-4-5 being deprecated
BETA = "context-management-2025-06-27"
USER = [{"role": "user", "content": "What is a gateway?"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search_docs",
            "description": "Search the docs",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    }
]
ANTHROPIC_TOOLS = [
    {
        "name": "search_docs",
        "description": "Search the docs",
        "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}},
    }
]


@pytest.fixture(scope="session")
def anthropic_sim(bg: BackgroundLoop) -> Iterator[AnthropicSim]:
    sim = AnthropicSim(SimSettings(models=ANTHROPIC_MODELS, api_key=KEY))
    bg.run(sim.start())
    yield sim
    bg.run(sim.stop())


@pytest.fixture
def sim(anthropic_sim: AnthropicSim) -> AnthropicSim:
    anthropic_sim.reset()
    return anthropic_sim


@pytest.fixture
def anthropic_type(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the provider type ``anthropic`` known to ``ProviderRegistry.build`` (whose default
    ``types`` was bound at definition time), whether or not the registry lists it already."""
    build = ProviderRegistry.build.__func__  # type: ignore[attr-defined]
    (types,) = build.__defaults__
    monkeypatch.setattr(build, "__defaults__", ({**types, "anthropic": AnthropicProvider},))


@pytest.fixture
def live(
    bg: BackgroundLoop, tmp_path: Path, sim: AnthropicSim, anthropic_type: None
) -> Iterator[LiveGateway]:
    providers = (
        ProviderSettings(name="anthropic", type="anthropic", base_url=sim.base_url,
                         api_key=KEY, headers={"Anthropic-Beta": BETA}),
        ProviderSettings(name="anthropic-bad", type="anthropic", base_url=sim.base_url,
                         api_key="sk-ant-wrong"),
        ProviderSettings(name="anthropic-next", type="anthropic", base_url=sim.base_url,
                         api_key=KEY, headers={"anthropic-version": "2026-10-21"}),
    )  # fmt: skip
    gateway = start_gateway(bg, provider_settings(tmp_path, *providers))
    yield gateway
    gateway.stop()


@pytest.fixture
def client(live: LiveGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key="client-key", max_retries=0) as client:
        yield client


def _text(content: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}]


# Translation: what the Anthropic API receives, and what the OpenAI client gets back.


def test_text_answer_and_the_request_anthropic_receives(
    client: openai.OpenAI, sim: AnthropicSim
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Be terse."}, *USER],  # type: ignore[list-item]
        temperature=0.2, top_p=0.9, stop=["\n\n"], user="u-1",
    )  # fmt: skip
    completion = raw.parse()
    assert completion.choices[0].message.content.startswith("Re: What is a gateway?")  # type: ignore[union-attr]
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == MODEL
    assert raw.headers["x-meterline-provider"] == "anthropic"
    assert sim.received[-1] == {
        "model": MODEL,
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": _text("What is a gateway?")}],
        "system": "Be terse.",
        "temperature": 0.2,
        "top_p": 0.9,
        "stop_sequences": ["\n\n"],
        "metadata": {"user_id": "u-1"},
    }
    headers = sim.received_headers[-1]
    assert headers["x-api-key"] == KEY and "authorization" not in headers
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["anthropic-beta"] == BETA
    assert headers["content-type"] == "application/json"


def test_streaming_matches_non_streaming_with_usage(
    client: openai.OpenAI, sim: AnthropicSim
) -> None:
    whole = client.chat.completions.create(model=MODEL, messages=USER)  # type: ignore[arg-type]
    completed = sim.completed_streams
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},  # type: ignore[arg-type]
        )
    )
    assert sim.received[-1]["stream"] is True
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        whole.choices[0].message.content
    )
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    assert chunks[-1].usage is not None and whole.usage is not None
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens > 0
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens > 0
    assert sim.completed_streams == completed + 1


def test_multi_turn_alternates_and_merges_turns(client: openai.OpenAI, sim: AnthropicSim) -> None:
    client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "What is a gateway?"},
            {"role": "user", "content": "Briefly."},
        ],
    )
    assert sim.received[-1]["system"] == "Be terse."
    assert sim.received[-1]["messages"] == [
        {"role": "user", "content": _text("Hi")},
        {"role": "assistant", "content": _text("Hello.")},
        {"role": "user", "content": _text("What is a gateway?") + _text("Briefly.")},
    ]


def test_tools_tool_choice_and_tool_results(client: openai.OpenAI, sim: AnthropicSim) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=USER, tools=TOOLS,  # type: ignore[arg-type]
        tool_choice={"type": "function", "function": {"name": "search_docs"}},
    )  # fmt: skip
    assert completion.choices[0].finish_reason == "tool_calls"
    call = completion.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.id.startswith("toolu_") and call.function.name == "search_docs"  # type: ignore[union-attr]
    arguments = json.loads(call.function.arguments)  # type: ignore[union-attr]
    assert arguments["query"] == "What is a gateway?"
    assert sim.received[-1]["tools"] == ANTHROPIC_TOOLS
    assert sim.received[-1]["tool_choice"] == {"type": "tool", "name": "search_docs"}

    client.chat.completions.create(
        model=MODEL, messages=USER, tools=TOOLS, tool_choice="required",  # type: ignore[arg-type]
        parallel_tool_calls=False,
    )  # fmt: skip
    assert sim.received[-1]["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}

    second = {"id": "call_2", "type": "function",
              "function": {"name": "search_docs", "arguments": '{"query": "routing"}'}}  # fmt: skip
    answer = client.chat.completions.create(
        model=MODEL, tools=TOOLS,  # type: ignore[arg-type]
        messages=[
            *USER,
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump(), second]},
            {"role": "tool", "tool_call_id": call.id, "content": "Gateways route requests."},
            {"role": "tool", "tool_call_id": "call_2", "content": "Routing picks a model."},
        ],  # type: ignore[list-item]
    )  # fmt: skip
    assert answer.choices[0].finish_reason == "stop"
    assert sim.received[-1]["messages"] == [
        {"role": "user", "content": _text("What is a gateway?")},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": call.id, "name": "search_docs", "input": arguments},
            {"type": "tool_use", "id": "call_2", "name": "search_docs",
             "input": {"query": "routing"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call.id, "content": "Gateways route requests."},
            {"type": "tool_result", "tool_use_id": "call_2", "content": "Routing picks a model."},
        ]},
    ]  # fmt: skip


def test_streamed_tool_call_arguments_arrive_whole(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model=MODEL, messages=USER, tools=TOOLS)  # type: ignore[arg-type]
    expected = whole.choices[0].message.tool_calls[0]  # type: ignore[index]
    pieces: dict[int, list[str]] = {}
    ids, names, finishes = {}, {}, []
    for chunk in client.chat.completions.create(
        model=MODEL,
        messages=USER,
        tools=TOOLS,
        stream=True,  # type: ignore[arg-type]
    ):
        if not chunk.choices:
            continue
        for delta in chunk.choices[0].delta.tool_calls or []:
            pieces.setdefault(delta.index, []).append(delta.function.arguments or "")  # type: ignore[union-attr]
            if delta.id:
                ids[delta.index] = delta.id
            if delta.function and delta.function.name:
                names[delta.index] = delta.function.name
        if chunk.choices[0].finish_reason:
            finishes.append(chunk.choices[0].finish_reason)
    assert ids == {0: expected.id} and names == {0: "search_docs"}
    assert len(pieces[0]) > 2  # it really came in pieces
    assert json.loads("".join(pieces[0])) == json.loads(expected.function.arguments)  # type: ignore[union-attr]
    assert finishes == ["tool_calls"]


def test_images_become_anthropic_image_sources(client: openai.OpenAI, sim: AnthropicSim) -> None:
    client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "Compare"},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        ]}],  # type: ignore[list-item]
    )  # fmt: skip
    assert sim.received[-1]["messages"][0]["content"] == [
        {"type": "text", "text": "Compare"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg",
                                     "data": "/9j/4AAQ"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
    ]  # fmt: skip


def test_json_mode_appends_an_instruction_to_the_system_prompt(
    client: openai.OpenAI, sim: AnthropicSim
) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Be terse."}, *USER],  # type: ignore[list-item]
        response_format={"type": "json_object"},
    )
    system = sim.received[-1]["system"]
    assert system[0] == {"type": "text", "text": "Be terse."} and len(system) == 2
    assert system[1]["text"].startswith("Respond with a single JSON object")
    assert "response_format" not in sim.received[-1]
    assert json.loads(completion.choices[0].message.content or "")["answer"]


@pytest.mark.parametrize(
    ("extra", "stop_reason", "finish"),
    [
        ({}, "end_turn", "stop"),
        ({"max_tokens": 3}, "max_tokens", "length"),
        ({"tools": TOOLS}, "tool_use", "tool_calls"),
    ],
)
def test_stop_reasons_are_mapped(
    client: openai.OpenAI, sim: AnthropicSim, extra: dict[str, Any], stop_reason: str, finish: str
) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=USER, **extra)  # type: ignore[call-overload]
    assert completion.choices[0].finish_reason == finish
    assert sim.received[-1].get("max_tokens") == extra.get("max_tokens", 4096)
    if finish == "length":
        assert completion.usage is not None and completion.usage.completion_tokens == 3
    finishes = [
        c.choices[0].finish_reason
        for c in client.chat.completions.create(model=MODEL, messages=USER, stream=True, **extra)  # type: ignore[call-overload]
        if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == [finish], stop_reason


def test_thinking_from_extra_body_reaches_anthropic_and_comes_back(
    client: openai.OpenAI, sim: AnthropicSim
) -> None:
    thinking = {"type": "enabled", "budget_tokens": 1024}
    completion = client.chat.completions.create(
        model=MODEL,
        messages=USER,
        max_tokens=2048,
        extra_body={"thinking": thinking},  # type: ignore[arg-type]
    )
    assert sim.received[-1]["thinking"] == thinking
    reasoning = (completion.choices[0].message.model_extra or {})["reasoning_content"]
    assert reasoning.startswith("The user asks: What is a gateway?")
    assert completion.choices[0].message.content.startswith("Re: ")  # type: ignore[union-attr]
    streamed = [
        (c.choices[0].delta.model_extra or {}).get("reasoning_content", "")
        for c in client.chat.completions.create(
            model=MODEL, messages=USER, max_tokens=2048, stream=True,  # type: ignore[arg-type]
            extra_body={"thinking": thinking},
        )
        if c.choices
    ]  # fmt: skip
    assert "".join(streamed) == reasoning


def test_fields_anthropic_does_not_know_are_not_forwarded(
    client: openai.OpenAI, sim: AnthropicSim
) -> None:
    client.chat.completions.create(
        model=MODEL, messages=USER, logit_bias={"50256": -100}, seed=42,  # type: ignore[arg-type]
        presence_penalty=0.1, frequency_penalty=0.2, service_tier="flex",
        extra_body={"top_k": 5, "logprobs": True},
    )  # fmt: skip
    sent = sim.received[-1]
    assert sent["top_k"] == 5
    for field in ("logit_bias", "seed", "presence_penalty", "frequency_penalty", "service_tier",
                  "logprobs"):  # fmt: skip
        assert field not in sent
    client.chat.completions.create(model=MODEL, messages=USER, service_tier="auto")  # type: ignore[arg-type]
    assert sim.received[-1]["service_tier"] == "auto"


def test_api_version_2026_10_21_gets_no_sampling_parameters(
    client: openai.OpenAI, sim: AnthropicSim
) -> None:
    completion = client.chat.completions.create(
        model=f"anthropic-next:{MODEL}", messages=USER, temperature=0.2, top_p=0.9,  # type: ignore[arg-type]
        extra_body={"top_k": 5},
    )  # fmt: skip
    assert completion.choices[0].finish_reason == "stop"
    assert sim.received_headers[-1]["anthropic-version"] == "2026-10-21"
    assert not {"temperature", "top_p", "top_k"} & set(sim.received[-1])
    # The simulator refuses them under that version, as Anthropic does.
    resp = httpx.post(
        f"{sim.base_url}/v1/messages", timeout=10,
        json={"model": MODEL, "max_tokens": 10, "messages": USER, "temperature": 1.0},
        headers={"x-api-key": KEY, "anthropic-version": "2026-10-21"},
    )  # fmt: skip
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == "temperature: Extra inputs are not permitted"


def test_anthropic_extra_keeps_only_anthropic_fields() -> None:
    extra = {"top_k": 3, "thinking": {"type": "adaptive"}, "mcp_servers": [], "logit_bias": {},
             "service_tier": "priority", "response_format": {}}  # fmt: skip
    assert anthropic_extra(extra) == {"top_k": 3, "thinking": {"type": "adaptive"},
                                      "mcp_servers": []}  # fmt: skip
    assert anthropic_extra({"service_tier": "standard_only"}) == {"service_tier": "standard_only"}


# Usage, prompt caching and cost.


def _count_tokens(sim: AnthropicSim, body: dict[str, Any]) -> int:
    sent = {k: v for k, v in body.items() if k not in ("max_tokens", "stream")}
    resp = httpx.post(
        f"{sim.base_url}/v1/messages/count_tokens", json=sent, timeout=10,
        headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"},
    )  # fmt: skip
    assert resp.status_code == 200
    return int(resp.json()["input_tokens"])


def test_cache_reads_and_writes_are_priced_exactly(
    client: openai.OpenAI, sim: AnthropicSim, live: LiveGateway
) -> None:
    long_text = "Meterline prices every token of every request exactly. " * 150
    prefix = count_text(long_text, MODEL)
    assert prefix >= sim.cache_min_tokens
    system = {"role": "system", "content": [
        {"type": "text", "text": long_text, "cache_control": {"type": "ephemeral"}}]}  # fmt: skip
    first = client.chat.completions.create(model=MODEL, messages=[system, *USER])  # type: ignore[list-item]
    assert sim.received[-1]["system"][0]["cache_control"] == {"type": "ephemeral"}
    total = _count_tokens(sim, sim.received[-1])
    second = client.chat.completions.create(model=MODEL, messages=[system, *USER])  # type: ignore[list-item]
    streamed = list(
        client.chat.completions.create(
            model=MODEL, messages=[system, {"role": "user", "content": "And a router?"}],  # type: ignore[list-item]
            stream=True, stream_options={"include_usage": True},
        )
    )[-1].usage  # fmt: skip
    assert first.usage is not None and second.usage is not None and streamed is not None
    assert first.usage.prompt_tokens == second.usage.prompt_tokens == total
    assert first.usage.prompt_tokens_details.cached_tokens == 0  # type: ignore[union-attr]
    assert second.usage.prompt_tokens_details.cached_tokens == prefix  # type: ignore[union-attr]
    assert streamed.prompt_tokens_details.cached_tokens == prefix  # type: ignore[union-attr]

    rows = live.rows()
    assert [(r["cached_tokens"], r["cache_write_tokens"]) for r in rows] == [
        (0, prefix), (prefix, 0), (prefix, 0)]  # fmt: skip
    assert [r["input_tokens"] for r in rows] == [total, total, streamed.prompt_tokens]
    info = Catalog.builtin().get("anthropic", MODEL)
    assert info is not None and info.price.cache_read is not None
    for row in rows:
        usage = Usage(row["input_tokens"], row["output_tokens"], cached_tokens=row["cached_tokens"],
                      cache_write_tokens=row["cache_write_tokens"])  # fmt: skip
        assert row["provider"] == "anthropic" and row["status"] == "ok"
        assert Decimal(row["cost_usd"]) == to_usd(cost(usage, info.price))
    # The cache write costs 1.25x input, the read 0.1x: the first request is the dearest.
    assert Decimal(rows[0]["cost_usd"]) > Decimal(rows[1]["cost_usd"])


# Errors.


def test_upstream_429_stays_429_with_its_retry_after(
    client: openai.OpenAI, sim: AnthropicSim
) -> None:
    sim.fail_next(Fault("http", 429, retry_after=30))
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model=MODEL, messages=USER)  # type: ignore[arg-type]
    assert info.value.response.headers["retry-after"] == "30"
    assert "rate limit" in info.value.message
    assert len(sim.received) == 1


def test_overloaded_529_is_retried(client: openai.OpenAI, sim: AnthropicSim) -> None:
    sim.fail_next(Fault("http", 529))
    completion = client.chat.completions.create(model=MODEL, messages=USER)  # type: ignore[arg-type]
    assert completion.choices[0].message.content
    assert len(sim.received) == 2

    sim.fail_next(*[Fault("http", 529)] * 3)
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model=MODEL, messages=USER)  # type: ignore[arg-type]
    assert info.value.status_code == 502
    assert info.value.code == "overloaded_error" and "Overloaded" in info.value.message
    assert len(sim.received) == 5


def test_refused_credentials_are_502_upstream_auth_error(
    client: openai.OpenAI, sim: AnthropicSim
) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model=f"anthropic-bad:{MODEL}", messages=USER)  # type: ignore[arg-type]
    assert info.value.status_code == 502
    assert info.value.type == "upstream_auth_error"
    assert "invalid x-api-key" in info.value.message
    assert len(sim.received) == 1 and sim.received_headers[0]["x-api-key"] == "sk-ant-wrong"


def test_model_unknown_upstream_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="anthropic:claude-nope", messages=USER)  # type: ignore[arg-type]
    assert "claude-nope" in info.value.message


def test_error_event_before_any_output_is_an_http_error(
    client: openai.OpenAI, sim: AnthropicSim
) -> None:
    sim.fail_next(ErrorEvent("overloaded_error", "Overloaded", after=1))
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model=MODEL, messages=USER, stream=True)  # type: ignore[arg-type]
    assert info.value.status_code == 502 and "Overloaded" in info.value.message


@pytest.mark.parametrize(
    "fault", [ErrorEvent("api_error", "Internal server error", after=6), Fault("drop_mid_stream")]
)
def test_stream_failing_midway_ends_in_an_error_and_is_logged(
    client: openai.OpenAI, sim: AnthropicSim, live: LiveGateway, fault: Fault | ErrorEvent
) -> None:
    sim.fail_next(fault)
    received: list[str] = []
    with pytest.raises(openai.APIError):
        for chunk in client.chat.completions.create(model=MODEL, messages=USER, stream=True):  # type: ignore[arg-type]
            received.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
    assert "".join(received).startswith("Re: ")
    (row,) = live.rows()
    assert row["status"] == "error" and row["finish_reason"] is None


def test_abandoned_stream_closes_the_upstream_call(
    client: openai.OpenAI, sim: AnthropicSim, live: LiveGateway
) -> None:
    cancelled = sim.cancelled_streams
    sim.settings.per_token = 0.05
    try:
        stream = client.chat.completions.create(model=MODEL, messages=USER, stream=True)  # type: ignore[arg-type]
        next(iter(stream))
        stream.close()
        deadline = time.monotonic() + 5
        while sim.cancelled_streams == cancelled and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sim.settings.per_token = 0.0
    assert sim.cancelled_streams == cancelled + 1
    deadline = time.monotonic() + 5
    while not (rows := live.rows()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert rows[0]["status"] == "cancelled"


# Models and configuration.


def test_models_are_the_configured_and_catalog_ones(
    client: openai.OpenAI, live: LiveGateway
) -> None:
    owners = {m.id: m.owned_by for m in client.models.list()}
    assert {name: owners[name] for name in ANTHROPIC_MODELS} == dict.fromkeys(
        ANTHROPIC_MODELS, "anthropic"
    )
    provider = live.gateway.providers.get("anthropic")
    assert isinstance(provider, AnthropicProvider)
    assert set(live.call(lambda _: provider.discover())) == set(ANTHROPIC_MODELS)


async def _provider(settings: ProviderSettings, env: dict[str, str]) -> AnthropicProvider:
    return AnthropicProvider(settings, ProviderDeps(UpstreamPool(), Catalog(), env=env))


@pytest.mark.parametrize(
    ("base_url", "env", "expected"),
    [
        (None, {}, "https://api.anthropic.com"),
        (None, {"ANTHROPIC_BASE_URL": "http://proxy:8080/"}, "http://proxy:8080"),
        ("http://sim:1/v1/", {"ANTHROPIC_BASE_URL": "http://proxy:8080"}, "http://sim:1"),
    ],
)
async def test_base_url_has_no_v1(base_url: str | None, env: dict[str, str], expected: str) -> None:
    settings = ProviderSettings(name="anthropic", type="anthropic", base_url=base_url,
                                api_key_env="MY_KEY")  # fmt: skip
    provider = await _provider(settings, {**env, "MY_KEY": "k"})
    assert provider.base_url == expected
    assert provider.headers["x-api-key"] == "k"
    assert 529 in provider.http.retry.retry_on_status


_START = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","model":"m",'
    b'"usage":{"input_tokens":5,"output_tokens":1}}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"Hi"}}\n\n'
)
_END = (
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
    b'"usage":{"output_tokens":2}}\n\nevent: message_stop\ndata: {"type":"message_stop"}'
)


async def _raw_upstream(body: bytes, call: Any) -> Any:
    """Run ``call(provider)`` against an upstream that answers every message with ``body``."""

    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/event-stream")

    app = web.Application()
    app.router.add_post("/v1/messages", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    settings = ProviderSettings(name="raw", type="anthropic",
                                base_url=f"http://127.0.0.1:{runner.addresses[0][1]}")  # fmt: skip
    try:
        pool = UpstreamPool()
        try:
            return await call(AnthropicProvider(settings, ProviderDeps(pool, Catalog())))
        finally:
            await pool.close()
    finally:
        await runner.cleanup()


async def _chunks(provider: AnthropicProvider) -> list[ChatChunk]:
    request = ChatRequest(MODEL, (Message("user", (TextPart("hi"),)),), stream=True)
    return [chunk async for chunks in provider.stream(request) for chunk in chunks]


async def test_stream_whose_last_event_lacks_its_blank_line_is_complete() -> None:
    chunks = await _raw_upstream(_START + _END, _chunks)
    assert [c.text for c in chunks if c.text] == ["Hi"]
    assert chunks[0].id == "msg_1"
    assert chunks[-1].usage == Usage(input_tokens=5, output_tokens=2)


async def test_stream_ending_before_message_stop_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamConnectionError, match="before message_stop"):
        await _raw_upstream(_START, _chunks)


async def test_answer_that_is_not_json_is_an_upstream_error() -> None:
    request = ChatRequest(MODEL, (Message("user", (TextPart("hi"),)),))
    with pytest.raises(UpstreamUnavailable, match="not JSON"):
        await _raw_upstream(b"<html>", lambda provider: provider.complete(request))


def test_registry_knows_the_anthropic_type(anthropic_type: None) -> None:
    defaults = ProviderRegistry.build.__func__.__defaults__  # type: ignore[attr-defined]
    assert defaults[0]["anthropic"] is AnthropicProvider
    assert defaults[0]["openai"] is PROVIDER_TYPES["openai"]


# The simulator speaks Anthropic's wire format: checked with the official anthropic SDK.


@pytest.fixture
def sdk(sim: AnthropicSim) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=sim.base_url, api_key=KEY, max_retries=0) as client:
        yield client


def test_sim_stream_is_anthropics_event_sequence_and_matches_the_message(
    sdk: anthropic.Anthropic, sim: AnthropicSim
) -> None:
    params: dict[str, Any] = {
        "model": SDK_MODEL, "max_tokens": 2048, "messages": USER, "tools": ANTHROPIC_TOOLS,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }  # fmt: skip
    whole = sdk.messages.create(**params)
    with sdk.messages.stream(**params) as stream:
        final = stream.get_final_message()
    assert [block.type for block in whole.content] == ["thinking", "tool_use"]
    assert whole.stop_reason == final.stop_reason == "tool_use"
    assert [b.model_dump() for b in final.content] == [b.model_dump() for b in whole.content]
    assert final.usage.output_tokens == whole.usage.output_tokens
    assert final.usage.input_tokens == whole.usage.input_tokens

    events = _raw_events(sim, {**params, "stream": True})
    names = [name for i, (name, _) in enumerate(events) if i == 0 or events[i - 1][0] != name]
    assert names == [
        "message_start", "content_block_start", "ping", "content_block_delta",
        "content_block_stop", "content_block_start", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]  # fmt: skip
    assert all(data["type"] == name for name, data in events)
    deltas = [data["delta"]["type"] for name, data in events if name == "content_block_delta"]
    assert deltas[-1] == "input_json_delta" and "signature_delta" in deltas
    assert deltas.index("signature_delta") == deltas.index("input_json_delta") - 1


def _raw_events(sim: AnthropicSim, body: dict[str, Any]) -> list[tuple[str, Any]]:
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    resp = httpx.post(f"{sim.base_url}/v1/messages", json=body, headers=headers, timeout=10)
    assert resp.headers["content-type"] == "text/event-stream; charset=utf-8"
    frames = [f.split("\n") for f in resp.text.split("\n\n") if f]
    assert all(f[0].startswith("event: ") and f[1].startswith("data: ") for f in frames)
    return [(f[0][len("event: ") :], json.loads(f[1][len("data: ") :])) for f in frames]


def test_sim_count_tokens_matches_usage_and_models_list(sdk: anthropic.Anthropic) -> None:
    message = sdk.messages.create(
        model=SDK_MODEL, max_tokens=100, system="Be terse.", messages=USER
    )  # type: ignore[arg-type]
    counted = sdk.messages.count_tokens(model=SDK_MODEL, system="Be terse.", messages=USER)  # type: ignore[arg-type]
    assert counted.input_tokens == message.usage.input_tokens > 0
    assert message.usage.cache_read_input_tokens == message.usage.cache_creation_input_tokens == 0
    models = sdk.models.list()
    assert {m.id for m in models.data} == set(ANTHROPIC_MODELS)
    assert next(m for m in models.data if m.id == SDK_MODEL).display_name == "Claude Haiku 4.5"


def test_sim_errors_are_anthropics(sdk: anthropic.Anthropic, sim: AnthropicSim) -> None:
    ask: dict[str, Any] = {"model": SDK_MODEL, "max_tokens": 100, "messages": USER}
    with pytest.raises(anthropic.AuthenticationError) as auth:
        sdk.with_options(api_key="wrong").messages.create(**ask)
    assert auth.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
        "request_id": auth.value.response.headers["request-id"],
    }
    sim.fail_next(Fault("http", 429, retry_after=7), Fault("http", 529))
    with pytest.raises(anthropic.RateLimitError) as limited:
        sdk.messages.create(**ask)
    assert limited.value.response.headers["retry-after"] == "7"
    assert limited.value.response.headers["anthropic-ratelimit-requests-remaining"] == "0"
    with pytest.raises(anthropic.OverloadedError):
        sdk.messages.create(**ask)
    with pytest.raises(anthropic.NotFoundError):
        sdk.messages.create(**{**ask, "model": "claude-nope"})
    with pytest.raises(anthropic.BadRequestError):
        sdk.messages.create(**ask, thinking={"type": "enabled", "budget_tokens": 100})
    resp = httpx.post(f"{sim.base_url}/v1/messages", json=ask, headers={"x-api-key": KEY})
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == "anthropic-version: header is required"
