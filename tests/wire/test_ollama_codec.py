"""The Ollama codec: OpenAI-origin requests → /api/chat bodies, answers, NDJSON streams, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meterline.errors import (
    InvalidRequest,
    UpstreamAuthFailed,
    UpstreamBadRequest,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from meterline.types import (
    ChatChunk,
    ChatRequest,
    ImagePart,
    Message,
    ResponseFormat,
    TextPart,
    ThinkingPart,
    Tool,
    ToolCallDelta,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
    Usage,
)
from meterline.wire import ollama
from meterline.wire.openai_request import decode_request

WEATHER_PARAMS = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}

OPENAI_BODY: dict[str, Any] = {
    "model": "llama3.2",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo"}},
            ],
        },
        {"role": "assistant", "content": "A cat.", "reasoning_content": "Feline shape."},
        {"role": "user", "content": "Weather in Paris and the time?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_abc",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_def",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": "{broken"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc", "content": '{"temp_c": 21}'},
        {"role": "tool", "tool_call_id": "call_def", "content": "14:05"},
    ],
    "stream": True,
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather",
                "parameters": WEATHER_PARAMS,
            },
        },
        {"type": "function", "function": {"name": "get_time"}},
    ],
    "max_tokens": 128,
    "temperature": 0.0,
    "top_p": 0.9,
    "stop": ["\n\n", "User:"],
    "seed": 42,
    "presence_penalty": 0.5,
    "frequency_penalty": 0.25,
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": {"type": "object", "required": ["a"]}},
    },
    "think": True,
}

EXPECTED_BODY: dict[str, Any] = {
    "model": "llama3.2",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is in this picture?", "images": ["iVBORw0KGgo"]},
        {"role": "assistant", "content": "A cat."},
        {"role": "user", "content": "Weather in Paris and the time?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                {"function": {"name": "get_time", "arguments": {}}},
            ],
        },
        {"role": "tool", "content": '{"temp_c": 21}', "tool_name": "get_weather"},
        {"role": "tool", "content": "14:05", "tool_name": "get_time"},
    ],
    "stream": True,
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather",
                "parameters": WEATHER_PARAMS,
            },
        },
        {
            "type": "function",
            "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
        },
    ],
    "format": {"type": "object", "required": ["a"]},
    "options": {
        "num_predict": 128,
        "temperature": 0.0,
        "top_p": 0.9,
        "seed": 42,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
        "stop": ["\n\n", "User:"],
    },
    "think": True,
}


def _request(**changes: Any) -> ChatRequest:
    return decode_request({**OPENAI_BODY, **changes})


def _user(text: str = "hi") -> tuple[Message, ...]:
    return (Message("user", (TextPart(text),)),)


# Requests


def test_openai_conversation_encodes_to_the_exact_ollama_body() -> None:
    assert ollama.encode_request(_request()) == EXPECTED_BODY


def test_minimal_request_sets_stream_false_explicitly() -> None:
    assert ollama.encode_request(ChatRequest("qwen3", _user())) == {
        "model": "qwen3",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": False,
    }


def test_url_image_is_refused_naming_the_part() -> None:
    body = {
        **OPENAI_BODY,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                ],
            }
        ],
    }
    with pytest.raises(InvalidRequest) as caught:
        ollama.encode_request(decode_request(body))
    assert caught.value.param == "messages[0].content[1]"
    assert "URL" in caught.value.message


def test_data_url_in_url_field_is_sent_inline() -> None:
    message = Message("user", (ImagePart(url="data:image/gif;base64,R0lGOD"),))
    body = ollama.encode_request(ChatRequest("llava", (message,)))
    assert body["messages"] == [{"role": "user", "content": "", "images": ["R0lGOD"]}]


def test_tool_result_images_and_unknown_call_ids() -> None:
    messages = (
        Message("user", (TextPart("go"),)),
        Message(
            "tool",
            (ToolResultPart("nowhere", (TextPart("see"), ImagePart(data="QUJD"))),),
        ),
    )
    body = ollama.encode_request(ChatRequest("llava", messages))
    assert body["messages"][1] == {"role": "tool", "content": "see", "images": ["QUJD"]}


def test_json_object_format_and_tool_choice_none_drops_tools() -> None:
    request = ChatRequest(
        "m",
        _user(),
        tools=(Tool("f"),),
        tool_choice=ToolChoice("none"),
        response_format=ResponseFormat("json_object"),
    )
    body = ollama.encode_request(request)
    assert body["format"] == "json"
    assert "tools" not in body


def test_text_format_and_missing_schema() -> None:
    text = ChatRequest("m", _user(), response_format=ResponseFormat("text"))
    assert "format" not in ollama.encode_request(text)
    bare = ChatRequest("m", _user(), response_format=ResponseFormat("json_schema", {"name": "x"}))
    assert ollama.encode_request(bare)["format"] == "json"


# Responses


def test_decode_documented_tool_call_answer() -> None:
    body = {
        "model": "llama3.2",
        "created_at": "2024-07-22T20:33:28.123648Z",
        "message": {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "function": {
                        "name": "get_current_weather",
                        "arguments": {"format": "celsius", "location": "Paris, FR"},
                    }
                }
            ],
        },
        "done_reason": "stop",
        "done": True,
        "total_duration": 885095291,
        "load_duration": 3753500,
        "prompt_eval_count": 122,
        "prompt_eval_duration": 328493000,
        "eval_count": 33,
        "eval_duration": 552222000,
    }
    response = ollama.decode_response(body)
    assert response.message == Message(
        "assistant",
        (
            ToolCallPart(
                "call_0", "get_current_weather", '{"format":"celsius","location":"Paris, FR"}'
            ),
        ),
    )
    assert response.finish_reason == "tool_calls"
    assert response.usage == Usage(input_tokens=122, output_tokens=33)
    assert response.model == "llama3.2"
    assert response.created == 1721680408


def test_decode_thinking_answer_and_length() -> None:
    body = {
        "model": "qwen3",
        "created_at": "2023-08-04T08:52:19.385406455-07:00",
        "message": {"role": "assistant", "content": "Blue — Rayleigh", "thinking": "Sky..."},
        "done": True,
        "done_reason": "length",
        "prompt_eval_count": 26,
        "eval_count": 298,
    }
    response = ollama.decode_response(body)
    assert response.message == Message(
        "assistant", (ThinkingPart("Sky..."), TextPart("Blue — Rayleigh"))
    )
    assert response.finish_reason == "length"
    assert response.usage == Usage(input_tokens=26, output_tokens=298)
    assert response.created == 1691164339


@pytest.mark.parametrize(
    ("done_reason", "calls", "expected"),
    [
        ("stop", False, "stop"),
        ("stop", True, "tool_calls"),
        ("length", False, "length"),
        ("length", True, "length"),
        ("load", False, "stop"),
        (None, False, "stop"),
    ],
)
def test_finish_reasons(done_reason: str | None, calls: bool, expected: str) -> None:
    message: dict[str, Any] = {"role": "assistant", "content": "x"}
    if calls:
        message["tool_calls"] = [{"function": {"name": "f", "arguments": {}}}]
    body: dict[str, Any] = {"model": "m", "message": message, "done": True}
    if done_reason is not None:
        body["done_reason"] = done_reason
    assert ollama.decode_response(body).finish_reason == expected


def test_tool_call_ids_kept_when_ollama_sends_them() -> None:
    body = {
        "message": {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "call_x1", "function": {"index": 0, "name": "f", "arguments": {"a": 1}}},
                {"function": {"index": 1, "name": "g", "arguments": {}}},
            ],
        },
        "done": True,
    }
    parts = ollama.decode_response(body).message.parts
    assert parts == (ToolCallPart("call_x1", "f", '{"a":1}'), ToolCallPart("call_1", "g", "{}"))


def test_answer_without_message_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamUnavailable):
        ollama.decode_response({"model": "m", "done": True})


# Streams

_LINES: list[dict[str, Any]] = [
    {
        "model": "qwen3",
        "created_at": "2025-06-01T10:00:00.1Z",
        "message": {"role": "assistant", "content": "", "thinking": "Paris…"},
        "done": False,
    },
    {
        "model": "qwen3",
        "created_at": "2025-06-01T10:00:00.2Z",
        "message": {"role": "assistant", "content": "Il fait 21 °C ☀"},
        "done": False,
    },
    {
        "model": "qwen3",
        "created_at": "2025-06-01T10:00:00.3Z",
        "message": {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"function": {"name": "get_time", "arguments": {"tz": "Europe/Paris"}}},
                {"function": {"name": "get_weather", "arguments": {"city": "Lyon"}}},
            ],
        },
        "done": False,
    },
    {
        "model": "qwen3",
        "created_at": "2025-06-01T10:00:00.4Z",
        "message": {"role": "assistant", "content": ""},
        "done_reason": "stop",
        "done": True,
        "total_duration": 4883583458,
        "prompt_eval_count": 26,
        "prompt_eval_duration": 342546000,
        "eval_count": 282,
        "eval_duration": 4535599000,
    },
]
NDJSON = b"".join(json.dumps(line, ensure_ascii=False).encode() + b"\n" for line in _LINES)

EXPECTED_STREAM = [
    ChatChunk(thinking="Paris…", model="qwen3"),
    ChatChunk(text="Il fait 21 °C ☀"),
    ChatChunk(tool_call=ToolCallDelta(0, "call_0", "get_time", '{"tz":"Europe/Paris"}')),
    ChatChunk(tool_call=ToolCallDelta(1, "call_1", "get_weather", '{"city":"Lyon"}')),
    ChatChunk(finish_reason="tool_calls"),
    ChatChunk(usage=Usage(input_tokens=26, output_tokens=282)),
]


def _decode(pieces: list[bytes]) -> list[ChatChunk]:
    decoder = ollama.StreamDecoder()
    chunks: list[ChatChunk] = []
    for piece in pieces:
        chunks.extend(decoder.feed(piece))
    chunks.extend(decoder.close())
    return chunks


def test_ndjson_stream_decodes_to_the_expected_chunks() -> None:
    assert _decode([NDJSON]) == EXPECTED_STREAM


def test_ndjson_split_at_every_byte_boundary_gives_identical_chunks() -> None:
    for cut in range(1, len(NDJSON)):
        assert _decode([NDJSON[:cut], NDJSON[cut:]]) == EXPECTED_STREAM, f"split at byte {cut}"


def test_ndjson_fed_byte_by_byte_gives_identical_chunks() -> None:
    assert _decode([NDJSON[i : i + 1] for i in range(len(NDJSON))]) == EXPECTED_STREAM


def test_blank_lines_crlf_and_a_last_line_without_newline() -> None:
    lines = NDJSON.replace(b"\n", b"\r\n\n").rstrip(b"\n")
    assert _decode([lines]) == EXPECTED_STREAM


def test_feed_line_handles_whole_lines() -> None:
    decoder = ollama.StreamDecoder()
    assert decoder.feed_line(b"") == []
    assert decoder.feed_line(b"   ") == []
    chunks = decoder.feed_line(
        b'{"model":"m","message":{"role":"assistant","content":"ok"},"done":true,'
        b'"done_reason":"length","prompt_eval_count":3,"eval_count":1}'
    )
    assert chunks == [
        ChatChunk(text="ok", model="m"),
        ChatChunk(finish_reason="length"),
        ChatChunk(usage=Usage(input_tokens=3, output_tokens=1)),
    ]


def test_error_line_raises_the_mapped_error() -> None:
    decoder = ollama.StreamDecoder("local")
    decoder.feed(NDJSON.split(b"\n")[0] + b"\n")
    with pytest.raises(UpstreamUnavailable) as caught:
        decoder.feed(b'{"error":"an error was encountered while running the model"}\n')
    assert caught.value.message == "local: an error was encountered while running the model"
    assert caught.value.provider == "local"


def test_non_json_line_raises() -> None:
    with pytest.raises(UpstreamUnavailable):
        ollama.StreamDecoder().feed(b"<html>\n")


# Errors


def test_model_not_found_is_a_404_bad_request() -> None:
    body = {"error": 'model "llama9" not found, try pulling it first'}
    error = ollama.decode_error(404, body, {}, "ollama")
    assert type(error) is UpstreamBadRequest
    assert error.status == 404 and error.upstream_status == 404
    assert error.message == 'ollama: model "llama9" not found, try pulling it first'
    assert not error.retryable


@pytest.mark.parametrize(
    ("status", "kind", "public_status"),
    [
        (400, UpstreamBadRequest, 400),
        (401, UpstreamAuthFailed, 502),
        (403, UpstreamAuthFailed, 502),
        (429, UpstreamRateLimited, 429),
        (500, UpstreamUnavailable, 502),
        (502, UpstreamUnavailable, 502),
        (503, UpstreamUnavailable, 502),
        (504, UpstreamTimeout, 504),
    ],
)
def test_error_mapping(status: int, kind: type, public_status: int) -> None:
    error = ollama.decode_error(status, {"error": "nope"}, {}, "ollama")
    assert type(error) is kind
    assert error.status == public_status
    assert error.message.endswith("nope")


def test_rate_limit_keeps_retry_after() -> None:
    error = ollama.decode_error(429, {"error": "busy"}, {"retry-after": "2"}, "ollama")
    assert error.retry_after == 2.0
    assert error.headers == {"retry-after": "2"}


def test_error_without_json_body() -> None:
    error = ollama.decode_error(502, "Bad Gateway", {}, "ollama")
    assert error.message == "ollama: upstream HTTP 502"


# Models


def test_decode_tags() -> None:
    body = {
        "models": [
            {"name": "llama3.2:latest", "model": "llama3.2:latest", "size": 2019393189},
            {"name": "qwen3:8b", "model": "qwen3:8b"},
            {"model": "nameless"},
        ]
    }
    assert ollama.decode_tags(body) == ["llama3.2:latest", "qwen3:8b"]
    assert ollama.decode_tags({"models": None}) == []
