"""The Anthropic-compatible surface, driven with the official ``anthropic`` SDK (the client
Claude Code is built on), here in front of an OpenAI-format upstream."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import httpx
import pytest

from meterline.sim import Fault, OpenAISim
from tests.fakes.harness import LiveGateway

TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]
ASK = [{"role": "user", "content": "Weather in Lisbon?"}]


@pytest.fixture
def client(live: LiveGateway) -> Iterator[anthropic.Anthropic]:
    # ANTHROPIC_BASE_URL has no /v1: the SDK adds it.
    with anthropic.Anthropic(base_url=live.url, api_key="client-key", max_retries=0) as client:
        yield client


def test_message_with_system_prompt(client: anthropic.Anthropic, openai_sim: OpenAISim) -> None:
    raw = client.messages.with_raw_response.create(
        model="gpt-4o-mini", max_tokens=200, system="Be terse.", messages=ASK,  # type: ignore[arg-type]
        stop_sequences=["END"], extra_body={"temperature": 0.3},
    )  # fmt: skip
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text"
    assert message.content[0].text.startswith("Re: Weather in Lisbon?")
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert raw.headers["x-meterline-provider"] == "openai"
    assert raw.headers["request-id"] == f"req_{raw.headers['x-meterline-request-id']}"
    sent = openai_sim.received[-1]
    assert sent["messages"][0] == {"role": "system", "content": "Be terse."}
    assert (sent["stop"], sent["temperature"], sent["max_completion_tokens"]) == (["END"], 0.3, 200)


def test_max_tokens_stop_reason(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model="gpt-4o-mini", max_tokens=4, messages=ASK)  # type: ignore[arg-type]
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 4


def test_streaming_text_matches_the_whole_answer(client: anthropic.Anthropic) -> None:
    whole = client.messages.create(model="gpt-4o-mini", max_tokens=200, messages=ASK)  # type: ignore[arg-type]
    with client.messages.stream(model="gpt-4o-mini", max_tokens=200, messages=ASK) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == whole.content[0].text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == whole.usage.output_tokens
    assert final.usage.input_tokens == whole.usage.input_tokens


def test_stream_event_sequence_is_anthropics(live: LiveGateway) -> None:
    body = {"model": "gpt-4o-mini", "max_tokens": 100, "messages": ASK, "stream": True}
    with httpx.stream("POST", f"{live.url}/v1/messages", json=body, timeout=10) as resp:
        assert resp.headers["content-type"] == "text/event-stream; charset=utf-8"
        raw = b"".join(resp.iter_raw()).decode()
    frames = [f for f in raw.split("\n\n") if f]
    names = [f.split("\n")[0].removeprefix("event: ") for f in frames]
    assert names[:4] == ["message_start", "ping", "content_block_start", "content_block_delta"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    for f in frames:  # each frame's data names its own event type
        name, data = f.split("\n")
        assert json.loads(data.removeprefix("data: "))["type"] == name.removeprefix("event: ")


def test_tool_use_non_streaming_and_streaming(
    client: anthropic.Anthropic, openai_sim: OpenAISim
) -> None:
    message = client.messages.create(
        model="gpt-4o-mini", max_tokens=200, messages=ASK, tools=TOOLS,  # type: ignore[arg-type]
        tool_choice={"type": "tool", "name": "get_weather"},
    )  # fmt: skip
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert block.type == "tool_use" and block.name == "get_weather"
    assert block.input == {"query": "Weather in Lisbon?", "limit": 3}
    sent = openai_sim.received[-1]
    assert sent["tools"][0]["function"]["parameters"] == TOOLS[0]["input_schema"]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}

    with client.messages.stream(
        model="gpt-4o-mini",
        max_tokens=200,
        messages=ASK,
        tools=TOOLS,  # type: ignore[arg-type]
    ) as stream:
        final = stream.get_final_message()
    streamed = final.content[-1]
    assert final.stop_reason == "tool_use"
    assert streamed.type == "tool_use" and streamed.input == block.input

    follow_up = [
        *ASK,
        {"role": "assistant", "content": [block.model_dump()]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": block.id, "content": "18°C, sunny"},
            {"type": "text", "text": "And tomorrow?"},
        ]},
    ]  # fmt: skip
    client.messages.create(model="gpt-4o-mini", max_tokens=200, messages=follow_up, tools=TOOLS)  # type: ignore[arg-type]
    forwarded = openai_sim.received[-1]["messages"]
    assert forwarded[1]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": json.dumps(block.input, separators=(",", ":")),
    }
    assert forwarded[2] == {"role": "tool", "tool_call_id": block.id, "content": "18°C, sunny"}
    assert forwarded[3] == {"role": "user", "content": "And tomorrow?"}


def test_image_blocks_reach_the_upstream_as_data_urls(
    client: anthropic.Anthropic, openai_sim: OpenAISim
) -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": "iVBORw0KGgo="}}  # fmt: skip
    client.messages.create(
        model="gpt-4o-mini", max_tokens=50,
        messages=[{"role": "user", "content": [image, {"type": "text", "text": "What is it?"}]}],  # type: ignore[list-item]
    )  # fmt: skip
    parts = openai_sim.received[-1]["messages"][0]["content"]
    assert parts[0] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
    }


def test_count_tokens(client: anthropic.Anthropic) -> None:
    short = client.messages.count_tokens(model="gpt-4o-mini", messages=ASK)  # type: ignore[arg-type]
    longer = client.messages.count_tokens(
        model="gpt-4o-mini",
        system="A much longer system prompt " * 20,
        messages=ASK,  # type: ignore[arg-type]
    )
    assert 0 < short.input_tokens < longer.input_tokens


def test_errors_use_anthropics_error_format(client: anthropic.Anthropic, live: LiveGateway) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        client.messages.create(model="claude-nope", max_tokens=10, messages=ASK)  # type: ignore[arg-type]
    assert info.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert info.value.body["type"] == "error"  # type: ignore[index]

    resp = httpx.post(f"{live.url}/v1/messages", json={"model": "gpt-4o-mini", "messages": ASK})
    assert resp.status_code == 400
    body = resp.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in body["error"]["message"]

    bad = httpx.post(f"{live.url}/v1/messages", content=b"{oops",
                     headers={"content-type": "application/json"})  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"


def test_upstream_rate_limit_reaches_the_anthropic_client_as_429(
    client: anthropic.Anthropic, openai_sim: OpenAISim
) -> None:
    openai_sim.fail_next(Fault("http", 429, retry_after=30))
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(model="gpt-4o-mini", max_tokens=10, messages=ASK)  # type: ignore[arg-type]
    assert info.value.response.headers["retry-after"] == "30"
    assert info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
