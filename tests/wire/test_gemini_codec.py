"""The Gemini codec: OpenAI-origin requests → generateContent bodies, answers, streams, errors."""

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
from meterline.wire import gemini
from meterline.wire.openai_request import decode_request
from meterline.wire.sse import SSEDecoder

WEATHER_PARAMS = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "City name"},
        "units": {"type": "string", "enum": ["c", "f"]},
    },
    "required": ["city"],
    "additionalProperties": False,
}

OPENAI_BODY: dict[str, Any] = {
    "model": "gemini-2.5-flash",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": "Answer in English."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
            ],
        },
        {"role": "assistant", "content": "A cat.", "reasoning_content": "Looks feline."},
        {"role": "user", "content": "And the weather in Paris, and the time?"},
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
                    "function": {"name": "get_time", "arguments": "not json"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc", "content": '{"temp_c": 21}'},
        {"role": "tool", "tool_call_id": "call_def", "content": "14:05"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "https://example.com/map.png"}},
                {"type": "text", "text": "Also, what is on this map?"},
            ],
        },
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather",
                "parameters": WEATHER_PARAMS,
                "strict": True,
            },
        },
        {
            "type": "function",
            "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
        },
    ],
    "tool_choice": "required",
    "max_tokens": 256,
    "temperature": 0.2,
    "top_p": 0.9,
    "stop": ["END"],
    "seed": 7,
    "presence_penalty": 0.1,
    "frequency_penalty": 0.2,
    "response_format": {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "strict": True,
            "schema": {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "properties": {
                    "answer": {"type": "string"},
                    "strict": {"type": "boolean"},
                    "tags": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}},
                            "additionalProperties": False,
                        },
                    },
                },
                "required": ["answer", "strict"],
                "additionalProperties": False,
            },
        },
    },
}

EXPECTED_BODY: dict[str, Any] = {
    "systemInstruction": {"parts": [{"text": "You are terse."}, {"text": "Answer in English."}]},
    "contents": [
        {
            "role": "user",
            "parts": [
                {"text": "What is in this picture?"},
                {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}},
            ],
        },
        {"role": "model", "parts": [{"text": "A cat."}]},
        {"role": "user", "parts": [{"text": "And the weather in Paris, and the time?"}]},
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_time", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}},
                {"functionResponse": {"name": "get_time", "response": {"output": "14:05"}}},
                {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/map.png"}},
                {"text": "Also, what is on this map?"},
            ],
        },
    ],
    "tools": [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "city": {"type": "string", "description": "City name"},
                            "units": {"type": "string", "enum": ["c", "f"]},
                        },
                        "required": ["city"],
                    },
                },
                {"name": "get_time"},
            ]
        }
    ],
    "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
    "generationConfig": {
        "maxOutputTokens": 256,
        "temperature": 0.2,
        "topP": 0.9,
        "stopSequences": ["END"],
        "seed": 7,
        "presencePenalty": 0.1,
        "frequencyPenalty": 0.2,
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "object",
            "properties": {
                "answer": {"type": "string"},
                "strict": {"type": "boolean"},
                "tags": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
            },
            "required": ["answer", "strict"],
        },
    },
}


def _request(**changes: Any) -> ChatRequest:
    return decode_request({**OPENAI_BODY, **changes})


# Requests


def test_openai_conversation_encodes_to_the_exact_gemini_body() -> None:
    assert gemini.encode_request(_request()) == EXPECTED_BODY


def test_the_stream_call_takes_the_same_body() -> None:
    assert gemini.encode_request(_request(stream=True)) == EXPECTED_BODY


def test_model_path() -> None:
    assert gemini.model_path("gemini-2.5-flash", False) == (
        "/v1beta/models/gemini-2.5-flash:generateContent"
    )
    assert gemini.model_path("gemini-2.5-flash", True) == (
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    )
    assert gemini.model_path("models/gemini-2.0-flash", False) == (
        "/v1beta/models/gemini-2.0-flash:generateContent"
    )
    assert gemini.model_path("tunedModels/my-tune", True) == (
        "/v1beta/tunedModels/my-tune:streamGenerateContent?alt=sse"
    )


def test_minimal_request_has_no_optional_sections() -> None:
    request = ChatRequest("gemini-2.0-flash", (Message("user", (TextPart("Hi"),)),))
    assert gemini.encode_request(request) == {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}]
    }


def test_image_forms() -> None:
    parts = (
        ImagePart(url="data:image/webp;base64,UklGR"),
        ImagePart(data="AAAA"),
        ImagePart(url="gs://bucket/scan", media_type="image/tiff"),
        ImagePart(url="https://example.com/photo?id=3"),
    )
    body = gemini.encode_request(ChatRequest("m", (Message("user", parts),)))
    assert body["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/webp", "data": "UklGR"}},
        {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
        {"fileData": {"mimeType": "image/tiff", "fileUri": "gs://bucket/scan"}},
        {"fileData": {"fileUri": "https://example.com/photo?id=3"}},
    ]


def test_tool_result_names_the_latest_call_with_its_id() -> None:
    messages = (
        Message("user", (TextPart("go"),)),
        Message("assistant", (ToolCallPart("call_0", "first", "{}"),)),
        Message("tool", (ToolResultPart("call_0", (TextPart("1"),)),)),
        Message("assistant", (ToolCallPart("call_0", "second", '{"n": 2}'),)),
        Message("tool", (ToolResultPart("call_0", (TextPart("oops"),), is_error=True),)),
    )
    body = gemini.encode_request(ChatRequest("m", messages))
    responses = [
        part["functionResponse"]
        for content in body["contents"]
        for part in content["parts"]
        if "functionResponse" in part
    ]
    assert responses == [
        {"name": "first", "response": {"output": "1"}},
        {"name": "second", "response": {"error": "oops"}},
    ]


def test_tool_result_without_its_call_is_refused_with_the_field() -> None:
    messages = (
        Message("user", (TextPart("go"),)),
        Message("tool", (ToolResultPart("call_x", (TextPart("1"),)),)),
    )
    with pytest.raises(InvalidRequest) as caught:
        gemini.encode_request(ChatRequest("m", messages))
    assert caught.value.param == "messages[1].tool_call_id"
    assert "call_x" in caught.value.message


def test_thinking_and_empty_turns_are_dropped_and_neighbours_merged() -> None:
    messages = (
        Message("user", (TextPart("a"),)),
        Message("assistant", (ThinkingPart("hmm", signature="sig"),)),
        Message("user", (TextPart("b"),)),
        Message("assistant", (ThinkingPart("so"), TextPart("c"), TextPart(""))),
    )
    body = gemini.encode_request(ChatRequest("m", messages))
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
        {"role": "model", "parts": [{"text": "c"}]},
    ]


def test_placeholder_signature_goes_on_the_first_call_of_each_turn() -> None:
    messages = (
        Message("user", (TextPart("go"),)),
        Message("assistant", (ToolCallPart("a", "f", "{}"), ToolCallPart("b", "g", "{}"))),
        Message("tool", (ToolResultPart("a", (TextPart("1"),)),)),
        Message("tool", (ToolResultPart("b", (TextPart("2"),)),)),
        Message("assistant", (ToolCallPart("c", "f", "{}"),)),
    )
    request = ChatRequest("gemini-3-pro-preview", messages)
    body = gemini.encode_request(request, thought_signature="skip_thought_signature_validator")
    model_turns = [c["parts"] for c in body["contents"] if c["role"] == "model"]
    assert model_turns == [
        [
            {
                "functionCall": {"name": "f", "args": {}},
                "thoughtSignature": "skip_thought_signature_validator",
            },
            {"functionCall": {"name": "g", "args": {}}},
        ],
        [
            {
                "functionCall": {"name": "f", "args": {}},
                "thoughtSignature": "skip_thought_signature_validator",
            }
        ],
    ]
    assert "thoughtSignature" not in json.dumps(gemini.encode_request(request))


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (ToolChoice("auto"), {"mode": "AUTO"}),
        (ToolChoice("none"), {"mode": "NONE"}),
        (ToolChoice("required"), {"mode": "ANY"}),
        (ToolChoice("tool", "f"), {"mode": "ANY", "allowedFunctionNames": ["f"]}),
    ],
)
def test_tool_choice_modes(choice: ToolChoice, expected: dict[str, Any]) -> None:
    request = ChatRequest(
        "m",
        (Message("user", (TextPart("x"),)),),
        tools=(Tool("f", parameters={"type": "object", "properties": {"a": {"type": "string"}}}),),
        tool_choice=choice,
    )
    assert gemini.encode_request(request)["toolConfig"] == {"functionCallingConfig": expected}


def test_json_object_asks_for_json_without_a_schema() -> None:
    request = ChatRequest(
        "m", (Message("user", (TextPart("x"),)),), response_format=ResponseFormat("json_object")
    )
    assert gemini.encode_request(request)["generationConfig"] == {
        "responseMimeType": "application/json"
    }


def test_schema_cleaning_reaches_every_nested_schema() -> None:
    params = {
        "type": "object",
        "properties": {
            "filter": {
                "anyOf": [
                    {"type": "object", "properties": {}, "additionalProperties": True},
                    {"type": "string", "$comment": "plain"},
                ]
            },
            "additionalProperties": {"type": "string", "strict": True},
        },
        "$defs": {"x": {"type": "object", "additionalProperties": False}},
    }
    request = ChatRequest(
        "m", (Message("user", (TextPart("x"),)),), tools=(Tool("f", parameters=params),)
    )
    declaration = gemini.encode_request(request)["tools"][0]["functionDeclarations"][0]
    assert declaration["parameters"] == {
        "type": "object",
        "properties": {
            "filter": {"anyOf": [{"type": "object", "properties": {}}, {"type": "string"}]},
            "additionalProperties": {"type": "string"},
        },
        "$defs": {"x": {"type": "object"}},
    }


# Responses

ANSWER: dict[str, Any] = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": "The user wants weather.", "thought": True},
                    {"text": "Checking."},
                    {
                        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                        "thoughtSignature": "CiQB0e2Kb",
                    },
                    {"functionCall": {"id": "fc-7", "name": "get_time", "args": {}}},
                ],
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 1200,
        "cachedContentTokenCount": 1000,
        "candidatesTokenCount": 30,
        "thoughtsTokenCount": 50,
        "totalTokenCount": 1280,
    },
    "modelVersion": "gemini-2.5-flash",
    "responseId": "mBZ0aLu5Ms2tz7IP",
}


def test_decode_response_with_thoughts_calls_and_cached_usage() -> None:
    response = gemini.decode_response(ANSWER)
    assert response.id == "mBZ0aLu5Ms2tz7IP"
    assert response.model == "gemini-2.5-flash"
    assert response.message == Message(
        "assistant",
        (
            ThinkingPart("The user wants weather."),
            TextPart("Checking."),
            ToolCallPart("call_0", "get_weather", '{"city":"Paris"}'),
            ToolCallPart("fc-7", "get_time", "{}"),
        ),
    )
    assert response.finish_reason == "tool_calls"
    assert response.usage == Usage(
        input_tokens=1200, output_tokens=80, cached_tokens=1000, reasoning_tokens=50
    )
    assert response.usage.total_tokens == 1280


def test_decode_plain_answer() -> None:
    body = {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "Hello — ünïcode"}]},
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "totalTokenCount": 8},
    }
    response = gemini.decode_response(body)
    assert response.message == Message("assistant", (TextPart("Hello — ünïcode"),))
    assert response.finish_reason == "stop"
    assert response.usage == Usage(input_tokens=5, output_tokens=3)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("LANGUAGE", "stop"),
        ("OTHER", "stop"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
        ("FINISH_REASON_UNSPECIFIED", "stop"),
        (None, "stop"),
    ],
)
def test_finish_reasons(reason: str | None, expected: str) -> None:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": "x"}]}}
    if reason is not None:
        candidate["finishReason"] = reason
    assert gemini.decode_response({"candidates": [candidate]}).finish_reason == expected


def test_max_tokens_stays_length_even_with_a_call() -> None:
    candidate = {
        "content": {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]},
        "finishReason": "MAX_TOKENS",
    }
    assert gemini.decode_response({"candidates": [candidate]}).finish_reason == "length"


def test_prompt_blocked_is_content_filter_with_empty_message() -> None:
    body = {
        "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
        "modelVersion": "gemini-2.0-flash",
    }
    response = gemini.decode_response(body)
    assert response.finish_reason == "content_filter"
    assert response.message == Message("assistant", ())
    assert response.usage == Usage(input_tokens=9)


def test_candidate_blocked_without_content() -> None:
    response = gemini.decode_response({"candidates": [{"finishReason": "SAFETY", "index": 0}]})
    assert response.finish_reason == "content_filter"
    assert response.message.parts == ()


def test_answer_without_candidates_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamUnavailable):
        gemini.decode_response({"usageMetadata": {}})
    with pytest.raises(UpstreamUnavailable):
        gemini.decode_response("nope")


# Streams

_SSE_CHUNKS: list[dict[str, Any]] = [
    {
        "candidates": [
            {
                "content": {
                    "parts": [{"text": "Weather first.", "thought": True}],
                    "role": "model",
                },
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 1200,
            "cachedContentTokenCount": 1000,
            "thoughtsTokenCount": 40,
            "totalTokenCount": 1240,
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "resp-1",
    },
    {
        "candidates": [
            {"content": {"parts": [{"text": "Paris — 21 °C ☀, "}], "role": "model"}, "index": 0}
        ],
        "usageMetadata": {
            "promptTokenCount": 1200,
            "cachedContentTokenCount": 1000,
            "candidatesTokenCount": 8,
            "thoughtsTokenCount": 40,
            "totalTokenCount": 1248,
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "resp-1",
    },
    {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {
                            "functionCall": {"name": "get_time", "args": {"tz": "Europe/Paris"}},
                            "thoughtSignature": "CiQB",
                        },
                        {"functionCall": {"name": "get_weather", "args": {"city": "Lyon"}}},
                    ],
                    "role": "model",
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 1200,
            "cachedContentTokenCount": 1000,
            "candidatesTokenCount": 25,
            "thoughtsTokenCount": 40,
            "totalTokenCount": 1265,
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "resp-1",
    },
]
# Google's SSE frames end in CRLF CRLF.
SSE_STREAM = b"".join(
    b"data: " + json.dumps(c, ensure_ascii=False).encode() + b"\r\n\r\n" for c in _SSE_CHUNKS
)

EXPECTED_STREAM = [
    ChatChunk(thinking="Weather first.", id="resp-1", model="gemini-2.5-flash"),
    ChatChunk(text="Paris — 21 °C ☀, "),
    ChatChunk(tool_call=ToolCallDelta(0, "call_0", "get_time", '{"tz":"Europe/Paris"}')),
    ChatChunk(tool_call=ToolCallDelta(1, "call_1", "get_weather", '{"city":"Lyon"}')),
    ChatChunk(finish_reason="tool_calls"),
    ChatChunk(
        usage=Usage(input_tokens=1200, output_tokens=65, cached_tokens=1000, reasoning_tokens=40)
    ),
]


def _decode_stream(pieces: list[bytes]) -> list[ChatChunk]:
    sse, decoder = SSEDecoder(), gemini.StreamDecoder()
    chunks: list[ChatChunk] = []
    for piece in pieces:
        for event in sse.feed(piece):
            chunks.extend(decoder.feed(json.loads(event.data)))
    for event in sse.close():
        chunks.extend(decoder.feed(json.loads(event.data)))
    return chunks


def test_stream_decodes_to_the_expected_chunks() -> None:
    assert _decode_stream([SSE_STREAM]) == EXPECTED_STREAM


def test_stream_split_at_every_byte_boundary_gives_identical_chunks() -> None:
    for cut in range(1, len(SSE_STREAM)):
        pieces = [SSE_STREAM[:cut], SSE_STREAM[cut:]]
        assert _decode_stream(pieces) == EXPECTED_STREAM, f"split at byte {cut}"


def test_stream_fed_byte_by_byte_gives_identical_chunks() -> None:
    pieces = [SSE_STREAM[i : i + 1] for i in range(len(SSE_STREAM))]
    assert _decode_stream(pieces) == EXPECTED_STREAM


def test_stream_usage_is_emitted_once_and_final_usage_tracks_the_latest() -> None:
    decoder = gemini.StreamDecoder()
    assert decoder.final_usage() is None
    first = decoder.feed(_SSE_CHUNKS[0])
    assert all(c.usage is None for c in first)
    assert decoder.final_usage() == Usage(
        input_tokens=1200, output_tokens=40, cached_tokens=1000, reasoning_tokens=40
    )
    decoder.feed(_SSE_CHUNKS[1])
    last = decoder.feed(_SSE_CHUNKS[2])
    assert [c.usage for c in last if c.usage is not None] == [EXPECTED_STREAM[-1].usage]
    # A repeated finish (never expected) emits neither a second finish nor usage.
    assert decoder.feed(_SSE_CHUNKS[2])[-1].tool_call is not None


def test_stream_text_only_finish_is_stop_and_length_maps() -> None:
    decoder = gemini.StreamDecoder()
    chunk = {
        "candidates": [
            {"content": {"parts": [{"text": "cut"}], "role": "model"}, "finishReason": "MAX_TOKENS"}
        ],
        "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 1},
    }
    assert decoder.feed(chunk) == [
        ChatChunk(text="cut"),
        ChatChunk(finish_reason="length"),
        ChatChunk(usage=Usage(input_tokens=3, output_tokens=1)),
    ]


def test_stream_prompt_blocked_finishes_with_content_filter() -> None:
    decoder = gemini.StreamDecoder()
    chunks = decoder.feed(
        {
            "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
            "usageMetadata": {"promptTokenCount": 4, "totalTokenCount": 4},
            "responseId": "r",
        }
    )
    assert chunks == [
        ChatChunk(finish_reason="content_filter", id="r"),
        ChatChunk(usage=Usage(input_tokens=4)),
    ]


def test_stream_error_object_raises_the_mapped_error() -> None:
    decoder = gemini.StreamDecoder("gem")
    with pytest.raises(UpstreamUnavailable) as caught:
        decoder.feed({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}})
    assert caught.value.message == "gem: overloaded"
    assert caught.value.upstream_status == 503


# Errors

RATE_LIMITED = {
    "error": {
        "code": 429,
        "message": "You exceeded your current quota.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{"quotaMetric": "generate_content_free_tier_requests"}],
            },
            {"@type": "type.googleapis.com/google.rpc.Help", "links": []},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"},
        ],
    }
}


def test_rate_limit_takes_retry_delay_from_retry_info() -> None:
    error = gemini.decode_error(429, RATE_LIMITED, {}, "gemini")
    assert isinstance(error, UpstreamRateLimited)
    assert error.retry_after == 7.0
    assert error.headers == {"retry-after": "7"}
    assert error.message == "gemini: You exceeded your current quota."
    assert error.upstream_status == 429 and error.provider == "gemini"


def test_rate_limit_header_wins_and_fractional_delays_parse() -> None:
    header = gemini.decode_error(429, RATE_LIMITED, {"retry-after": "3"}, "gemini")
    assert header.retry_after == 3.0
    body = json.loads(json.dumps(RATE_LIMITED).replace('"7s"', '"0.25s"'))
    fractional = gemini.decode_error(429, body, {}, "gemini")
    assert fractional.retry_after == 0.25
    assert fractional.headers == {"retry-after": "1"}


def test_resource_exhausted_status_is_a_rate_limit_without_delay() -> None:
    body = {"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}}
    error = gemini.decode_error(429, body, {}, "gemini")
    assert isinstance(error, UpstreamRateLimited)
    assert error.retry_after is None and error.headers == {}


def _err(code: int, status: str, message: str = "boom", **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status, **extra}}


@pytest.mark.parametrize(
    ("status", "body", "kind", "public_status"),
    [
        (400, _err(400, "INVALID_ARGUMENT"), UpstreamBadRequest, 400),
        (400, _err(400, "FAILED_PRECONDITION"), UpstreamBadRequest, 400),
        (401, _err(401, "UNAUTHENTICATED"), UpstreamAuthFailed, 502),
        (403, _err(403, "PERMISSION_DENIED"), UpstreamAuthFailed, 502),
        (404, _err(404, "NOT_FOUND"), UpstreamBadRequest, 404),
        (500, _err(500, "INTERNAL"), UpstreamUnavailable, 502),
        (503, _err(503, "UNAVAILABLE"), UpstreamUnavailable, 502),
        (504, _err(504, "DEADLINE_EXCEEDED"), UpstreamTimeout, 504),
        (499, _err(499, "DEADLINE_EXCEEDED"), UpstreamTimeout, 504),
        (502, "<html>Bad Gateway</html>", UpstreamUnavailable, 502),
    ],
)
def test_error_mapping(status: int, body: Any, kind: type, public_status: int) -> None:
    error = gemini.decode_error(status, body, {}, "gemini")
    assert type(error) is kind
    assert error.status == public_status
    assert error.upstream_status == status


def test_bad_request_keeps_message_and_grpc_status() -> None:
    error = gemini.decode_error(400, _err(400, "INVALID_ARGUMENT", "bad schema"), {}, "gemini")
    assert error.message == "gemini: bad schema"
    assert error.code == "invalid_argument"
    assert not error.retryable


def test_invalid_api_key_400_is_an_auth_failure() -> None:
    body = _err(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        details=[
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
            }
        ],
    )
    error = gemini.decode_error(400, body, {}, "gemini")
    assert isinstance(error, UpstreamAuthFailed)
    assert "API key not valid" in error.message


def test_error_array_body_and_plain_text_body() -> None:
    listed = gemini.decode_error(404, [_err(404, "NOT_FOUND", "models/x is not found")], {}, "g")
    assert listed.message == "g: models/x is not found" and listed.status == 404
    text = gemini.decode_error(500, "Internal error", {}, "g")
    assert text.message == "g: upstream HTTP 500"


# Models


def test_decode_models_keeps_generate_content_models_without_prefix() -> None:
    body = {
        "models": [
            {
                "name": "models/gemini-2.5-flash",
                "supportedGenerationMethods": ["generateContent", "countTokens"],
            },
            {"name": "models/text-embedding-004", "supportedGenerationMethods": ["embedContent"]},
            {"name": "models/gemini-2.0-flash", "supportedGenerationMethods": ["generateContent"]},
            {"name": "models/aqa"},
        ],
        "nextPageToken": "abc",
    }
    assert gemini.decode_models(body) == ["gemini-2.5-flash", "gemini-2.0-flash"]
    assert gemini.decode_models({}) == []
