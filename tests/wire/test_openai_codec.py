"""OpenAI wire format ⇄ internal types: round trips, usage, stream encoding, error mapping."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from meterline.errors import (
    InvalidRequest,
    UpstreamAuthFailed,
    UpstreamBadRequest,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from meterline.types import ChatChunk, ToolCallDelta, Usage
from meterline.wire.openai_request import decode_request, encode_request
from meterline.wire.openai_response import (
    StreamEncoder,
    decode_chunk,
    decode_error,
    decode_response,
    decode_usage,
    encode_response,
    encode_usage,
)

CONVERSATION: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is in this image?"},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ",
                                                "detail": "high"}},
        ]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "lookup", "arguments": "{\"q\": \"cat\"}"}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
        {"role": "assistant", "content": "A cat."},
        {"role": "user", "content": "Thanks", "name": "ana"},
    ],
    "tools": [{"type": "function", "function": {"name": "lookup", "description": "Look up",
                                                 "parameters": {"type": "object"}}}],
    "tool_choice": "required",
    "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
    "temperature": 0.5,
    "top_p": 1.0,
    "stop": ["END"],
    "seed": 3,
    "max_tokens": 99,
    "logprobs": True,
}  # fmt: skip


def test_request_round_trip_is_lossless() -> None:
    request = decode_request(CONVERSATION)
    encoded = encode_request(request, max_tokens_field="max_tokens")
    assert encoded == CONVERSATION
    assert decode_request(encoded) == request


def test_parts_and_tools_the_internal_types_do_not_model_round_trip_unchanged() -> None:
    file_part = {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:;base64,JV"}}
    audio = {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}}
    custom = {"type": "custom", "custom": {"name": "grep", "format": {"type": "text"}}}
    body = {
        "model": "gpt-5",
        "messages": [
            {"role": "user", "content": [file_part, audio, {"type": "text", "text": "?"}]}
        ],
        "tools": [custom],
    }
    request = decode_request(json.loads(json.dumps(body)))
    assert request.wire == "openai" and request.opaque == "a 'file' content block"
    assert request.tools[0].name == "grep"
    assert encode_request(request) == body


def test_developer_role_is_a_system_message_and_max_completion_tokens_wins() -> None:
    request = decode_request({
        "model": "o3", "max_tokens": 5, "max_completion_tokens": 7,
        "messages": [{"role": "developer", "content": "rules"}, {"role": "user", "content": "x"}],
    })  # fmt: skip
    assert request.messages[0].role == "system" and request.max_tokens == 7


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 0}, "n"),
        ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": [1]}, "stop"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": -1},
         "max_tokens"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "any"},
         "tool_choice"),
    ],
)  # fmt: skip
def test_invalid_requests_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        decode_request(body)
    assert info.value.param == param


UPSTREAM_RESPONSE: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "o4-mini",
    "choices": [{"index": 0, "logprobs": None, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "Calling.", "refusal": None, "annotations": [],
        "tool_calls": [{"id": "call_9", "type": "function",
                        "function": {"name": "f", "arguments": "{}"}}]}}],
    "usage": {"prompt_tokens": 2000, "completion_tokens": 300, "total_tokens": 2300,
              "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 256, "audio_tokens": 0,
                                            "accepted_prediction_tokens": 0,
                                            "rejected_prediction_tokens": 0}},
    "service_tier": "default",
    "system_fingerprint": "fp_1",
}  # fmt: skip


def test_response_round_trip() -> None:
    response = decode_response(UPSTREAM_RESPONSE)
    assert response.usage == Usage(2000, 300, cached_tokens=1920, reasoning_tokens=256)
    assert response.finish_reason == "tool_calls"
    assert encode_response(response) == UPSTREAM_RESPONSE


def test_usage_round_trip() -> None:
    usage = Usage(10, 20, cached_tokens=3, reasoning_tokens=4)
    assert decode_usage(encode_usage(usage)) == usage


def test_stream_encoder_then_decoder_gives_back_the_chunks() -> None:
    chunks = [
        ChatChunk(text="Hel"),
        ChatChunk(text="lo"),
        ChatChunk(tool_call=ToolCallDelta(0, "call_1", "f", "")),
        ChatChunk(tool_call=ToolCallDelta(0, None, None, '{"a"')),
        ChatChunk(tool_call=ToolCallDelta(0, None, None, ": 1}")),
        ChatChunk(finish_reason="tool_calls"),
        ChatChunk(usage=Usage(5, 6)),
    ]
    encoder = StreamEncoder("chatcmpl-x", "gpt-4o", include_usage=True)
    raw = [b for c in chunks for b in encoder.encode(c)]
    bodies = [orjson.loads(b) for b in raw]
    # The shared fields are serialised once per stream; the bytes are the whole objects' own.
    assert raw == [orjson.dumps(b) for b in bodies]
    assert bodies[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert all("usage" in b for b in bodies)
    assert bodies[-1]["choices"] == [] and bodies[-1]["usage"]["total_tokens"] == 11
    # Only the first delta of a tool call carries its id, type and name.
    tool_deltas = [b["choices"][0]["delta"]["tool_calls"][0] for b in bodies
                   if b["choices"] and "tool_calls" in b["choices"][0]["delta"]]  # fmt: skip
    assert [set(d) for d in tool_deltas] == [
        {"index", "id", "type", "function"},
        {"index", "function"},
        {"index", "function"},
    ]
    decoded = [c for b in json.loads(json.dumps(bodies)) for c in decode_chunk(b)]
    assert decoded == chunks


def test_stream_encoder_without_usage_drops_usage() -> None:
    encoder = StreamEncoder("id", "m", include_usage=False)
    raw = encoder.encode(ChatChunk(text="x")) + encoder.encode(ChatChunk(usage=Usage(1, 1)))
    bodies = [orjson.loads(b) for b in raw]
    assert len(bodies) == 2 and all("usage" not in b for b in bodies)
    assert bodies[1]["choices"][0] == {
        "index": 0, "delta": {"content": "x"}, "logprobs": None, "finish_reason": None,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("status", "headers", "kind", "client_status"),
    [
        (429, {"retry-after": "7"}, UpstreamRateLimited, 429),
        (401, {}, UpstreamAuthFailed, 502),
        (400, {}, UpstreamBadRequest, 400),
        (404, {}, UpstreamBadRequest, 404),
        (500, {}, UpstreamUnavailable, 502),
        (503, {}, UpstreamUnavailable, 502),
        (504, {}, UpstreamTimeout, 504),
    ],
)
def test_upstream_errors_map_to_the_hierarchy(
    status: int, headers: dict[str, str], kind: type, client_status: int
) -> None:
    body = {"error": {"message": "boom", "type": "x", "param": None, "code": "c"}}
    error = decode_error(status, body, headers, "openai")
    assert type(error) is kind
    assert error.status == client_status and "boom" in error.message
    if status == 429:
        assert error.retry_after == 7 and error.headers["retry-after"] == "7"


def test_retry_after_ms_is_understood() -> None:
    error = decode_error(429, {}, {"retry-after-ms": "1500"}, "openai")
    assert error.retry_after == 1.5
