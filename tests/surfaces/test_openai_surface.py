"""The OpenAI-compatible surface, driven over real sockets with the official ``openai`` SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import httpx
import openai
import pytest

from meterline.catalog import Catalog, cost, to_usd
from meterline.sim import OpenAISim
from meterline.types import Usage
from tests.fakes.harness import LiveGateway

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


@pytest.fixture
def client(live: LiveGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key="client-key", max_retries=0) as client:
        yield client


def test_non_streaming_answer_has_usage_and_gateway_headers(
    client: openai.OpenAI, live: LiveGateway
) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=USER)
    completion = raw.parse()
    assert completion.choices[0].message.content.startswith("Re: What is a gateway?")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-4o-mini"
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    headers = raw.headers
    assert headers["x-meterline-provider"] == "openai"
    assert headers["x-meterline-model"] == "gpt-4o-mini"
    assert headers["x-task-id"] == headers["x-meterline-request-id"]
    price = Catalog.builtin().get("openai", "gpt-4o-mini")
    assert price is not None
    expected = cost(Usage(usage.prompt_tokens, usage.completion_tokens), price.price)
    assert Decimal(headers["x-meterline-cost-usd"]) == to_usd(expected)
    assert float(headers["x-meterline-latency-ms"]) > 0


def test_streaming_matches_non_streaming_and_reports_usage(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]


def test_stream_is_framed_exactly_like_openai(live: LiveGateway) -> None:
    body = {"model": "gpt-4o-mini", "messages": USER, "stream": True}
    with httpx.stream("POST", f"{live.url}/v1/chat/completions", json=body, timeout=10) as resp:
        assert resp.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert resp.headers["x-meterline-provider"] == "openai"
        raw = b"".join(resp.iter_raw()).decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    payloads = [json.loads(e[len("data: ") :]) for e in events[:-2]]
    assert all(e.startswith("data: ") for e in events[:-1])
    assert all(p["object"] == "chat.completion.chunk" for p in payloads)
    # Without stream_options.include_usage the client gets no usage chunk and no usage keys.
    assert all("usage" not in p for p in payloads)


def test_tools_round_trip_non_streaming_and_streaming(
    client: openai.OpenAI, openai_sim: OpenAISim
) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,
        tools=TOOLS,  # type: ignore[arg-type]
        tool_choice={"type": "function", "function": {"name": "search_docs"}},
    )
    call = completion.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "search_docs"
    assert json.loads(call.function.arguments)["query"] == "What is a gateway?"
    sent = openai_sim.received[-1]
    assert sent["tools"] == TOOLS
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "search_docs"}}

    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=USER,
        tools=TOOLS,
        stream=True,  # type: ignore[arg-type]
    )
    pieces: dict[int, list[str]] = {}
    names = {}
    for chunk in stream:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            pieces.setdefault(delta.index, []).append(delta.function.arguments or "")
            if delta.function.name:
                names[delta.index] = delta.function.name
    assert names == {0: "search_docs"}
    assert json.loads("".join(pieces[0])) == json.loads(call.function.arguments)

    follow_up = [
        *USER,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "Gateways route requests."},
    ]
    answer = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=follow_up,
        tools=TOOLS,  # type: ignore[arg-type]
    )
    assert answer.choices[0].finish_reason == "stop"
    forwarded = openai_sim.received[-1]["messages"]
    assert forwarded[1]["tool_calls"][0]["id"] == call.id
    assert forwarded[2] == {
        "role": "tool",
        "tool_call_id": call.id,
        "content": "Gateways route requests.",
    }


def test_parameters_images_and_json_mode_pass_through(
    client: openai.OpenAI, openai_sim: OpenAISim
) -> None:
    image = "data:image/png;base64,iVBORw0KGgo="
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "Answer in JSON."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe"},
                    {"type": "image_url", "image_url": {"url": image, "detail": "low"}},
                ],
            },
        ],
        response_format={"type": "json_object"},
        max_tokens=50,
        temperature=0.2,
        top_p=0.9,
        seed=42,
        stop=["\n\n"],
        presence_penalty=0.1,
        frequency_penalty=0.2,
        logit_bias={"50256": -100},
        user="u-1",
    )
    sent = openai_sim.received[-1]
    assert sent["messages"][1]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": image, "detail": "low"},
    }
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["max_completion_tokens"] == 50 and "max_tokens" not in sent
    expected = {"temperature": 0.2, "top_p": 0.9, "seed": 42, "stop": ["\n\n"],
                "presence_penalty": 0.1, "frequency_penalty": 0.2,
                "logit_bias": {"50256": -100}, "user": "u-1"}  # fmt: skip
    assert {k: sent[k] for k in expected} == expected


def test_max_tokens_reaches_compatible_upstream_as_max_tokens(
    client: openai.OpenAI, compat_sim: OpenAISim
) -> None:
    completion = client.chat.completions.create(
        model="groq:llama-3.1-8b-instant", messages=USER, max_completion_tokens=3
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 3
    sent = compat_sim.received[-1]
    assert sent["max_tokens"] == 3 and "max_completion_tokens" not in sent
    assert sent["model"] == "llama-3.1-8b-instant"
    assert compat_sim.received_headers[-1]["Authorization"] == "Bearer gsk-test"


@pytest.mark.parametrize(
    ("requested", "provider", "model"),
    [
        ("openai:gpt-4o", "openai", "gpt-4o"),
        ("gpt-4o", "openai", "gpt-4o"),
        ("fast", "openai", "gpt-4.1-nano"),
        ("llama", "groq", "llama-3.1-8b-instant"),
    ],
)
def test_model_addressing(client: openai.OpenAI, requested: str, provider: str, model: str) -> None:
    raw = client.chat.completions.with_raw_response.create(model=requested, messages=USER)
    assert raw.headers["x-meterline-provider"] == provider
    assert raw.headers["x-meterline-model"] == model
    assert raw.parse().model == model


def test_models_lists_every_enabled_provider(client: openai.OpenAI) -> None:
    models = {m.id: m.owned_by for m in client.models.list()}
    assert models["gpt-4o"] == "openai"
    assert models["llama-3.1-8b-instant"] == "groq"
    # gpt-4o-mini is served by both upstreams, so each is listed with its provider prefix.
    assert models["openai:gpt-4o-mini"] == "openai" and models["groq:gpt-4o-mini"] == "groq"
    assert models["auto"] == models["fast"] == "meterline"  # routed names are offered too
