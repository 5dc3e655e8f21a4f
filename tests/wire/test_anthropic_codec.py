"""The Anthropic Messages codec: requests, responses, usage, streams and errors, both ways."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import pytest

from meterline.errors import (
    AuthError,
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    PayloadTooLarge,
    PermissionDenied,
    ProviderError,
    RateLimited,
    UpstreamAuthFailed,
    UpstreamBadRequest,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from meterline.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    FinishReason,
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
from meterline.wire import openai_request
from meterline.wire.anthropic_request import decode_request, encode_request
from meterline.wire.anthropic_response import (
    Event,
    StreamDecoder,
    StreamEncoder,
    decode_error,
    decode_response,
    decode_usage,
    encode_error,
    encode_response,
    encode_usage,
    frame,
    ping,
)
from meterline.wire.sse import SSEDecoder

EPHEMERAL = {"type": "ephemeral"}

# --- requests: Anthropic client → internal → Anthropic upstream -------------------------------

CLAUDE_CODE_BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 32000,
    "stream": True,
    "temperature": 1,
    "system": [
        {"type": "text", "text": "You are Claude Code.", "cache_control": EPHEMERAL},
        {"type": "text", "text": "Platform: linux"},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Fix the failing test"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Read the test first.", "signature": "c2lnMQ=="},
                {"type": "redacted_thinking", "data": "RU5DUllQVEVE"},
                {"type": "text", "text": "Reading it."},
                {
                    "type": "tool_use",
                    "id": "toolu_01A",
                    "name": "Read",
                    "input": {"path": "tests/test_a.py", "limit": 10, "note": "ünïcode"},
                },
                {"type": "tool_use", "id": "toolu_01B", "name": "Bash", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01A",
                    "content": [
                        {"type": "text", "text": "assert 1 == 2"},
                        {"type": "image", "source": {"type": "url", "url": "https://x/s.png"}},
                    ],
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01B",
                    "content": "command not found",
                    "is_error": True,
                    "cache_control": EPHEMERAL,
                },
                {"type": "text", "text": "Also run the linter."},
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "Done."}]},
        {
            "role": "user",
            "content": [{"type": "text", "text": "Thanks", "cache_control": EPHEMERAL}],
        },
    ],
    "tools": [
        {
            "name": "Read",
            "description": "Read a file",
            "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
        },
        {
            "name": "Bash",
            "description": "Run a command",
            "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
            "cache_control": EPHEMERAL,
        },
    ],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "metadata": {"user_id": "user_42_session_7"},
    "thinking": {"type": "enabled", "budget_tokens": 16000},
    "stop_sequences": ["\n\nHuman:"],
    "top_k": 40,
    "service_tier": "auto",
}


def test_decode_request_maps_every_anthropic_feature() -> None:
    request = decode_request(copy.deepcopy(CLAUDE_CODE_BODY))

    assert request.messages == (
        Message(
            "system",
            (TextPart("You are Claude Code.", EPHEMERAL), TextPart("Platform: linux")),
        ),
        Message(
            "user",
            (
                TextPart("Fix the failing test"),
                ImagePart(data="iVBORw0K", media_type="image/png"),
            ),
        ),
        Message(
            "assistant",
            (
                ThinkingPart("Read the test first.", "c2lnMQ=="),
                ThinkingPart("RU5DUllQVEVE", redacted=True),
                TextPart("Reading it."),
                ToolCallPart(
                    "toolu_01A",
                    "Read",
                    '{"path":"tests/test_a.py","limit":10,"note":"ünïcode"}',
                ),
                ToolCallPart("toolu_01B", "Bash", "{}"),
            ),
        ),
        Message(
            "tool",
            (
                ToolResultPart(
                    "toolu_01A", (TextPart("assert 1 == 2"), ImagePart(url="https://x/s.png"))
                ),
            ),
        ),
        Message(
            "tool",
            (ToolResultPart("toolu_01B", (TextPart("command not found", EPHEMERAL),), True),),
        ),
        Message("user", (TextPart("Also run the linter."),)),
        Message("assistant", (TextPart("Done."),)),
        Message("user", (TextPart("Thanks", EPHEMERAL),)),
    )
    assert request.model == "claude-sonnet-4-5"
    assert request.max_tokens == 32000
    assert request.stream is True and request.include_usage is True
    assert request.temperature == 1.0
    assert request.stop == ("\n\nHuman:",)
    assert request.tools == (
        Tool("Read", "Read a file", CLAUDE_CODE_BODY["tools"][0]["input_schema"]),
        Tool(
            "Bash",
            "Run a command",
            CLAUDE_CODE_BODY["tools"][1]["input_schema"],
            cache_control=EPHEMERAL,
        ),
    )
    assert request.tool_choice == ToolChoice("auto")
    assert request.parallel_tool_calls is False
    assert request.user == "user_42_session_7"
    assert request.metadata == {"user_id": "user_42_session_7"}
    assert request.extra == {
        "thinking": {"type": "enabled", "budget_tokens": 16000},
        "top_k": 40,
        "service_tier": "auto",
    }


def test_anthropic_request_round_trips_unchanged() -> None:
    body = encode_request(decode_request(copy.deepcopy(CLAUDE_CODE_BODY)))
    assert body == CLAUDE_CODE_BODY


def test_string_contents_round_trip_as_equivalent_blocks() -> None:
    original = {
        "model": "claude-haiku-4-5",
        "max_tokens": 100,
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Bye"},
        ],
    }
    body = encode_request(decode_request(copy.deepcopy(original)))
    assert body == {
        "model": "claude-haiku-4-5",
        "max_tokens": 100,
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]},
            {"role": "user", "content": [{"type": "text", "text": "Bye"}]},
        ],
    }


def _sdk_client(handler: Callable[[Any], Any]) -> Any:
    """The official SDK, answering through ``handler`` instead of the network."""
    anthropic = pytest.importorskip("anthropic")
    httpx = pytest.importorskip("httpx2")
    return anthropic.Anthropic(
        api_key="test",
        base_url="http://upstream.test",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )


def _as_blocks(content: Any) -> Any:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def test_sdk_sent_body_round_trips() -> None:
    sent: list[dict[str, Any]] = []
    reply: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }

    def handler(request: Any) -> Any:
        sent.append(json.loads(request.content))
        return pytest.importorskip("httpx2").Response(200, json=reply)

    _sdk_client(handler).messages.create(
        model="claude-x",
        max_tokens=512,
        system=[{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {"role": "user", "content": "What is 2+2?"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "calc", "input": {}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "4"}],
            },
        ],
        tools=[{"name": "calc", "input_schema": {"type": "object"}}],
        tool_choice={"type": "tool", "name": "calc"},
        metadata={"user_id": "u1"},
        thinking={"type": "enabled", "budget_tokens": 1024},
        extra_body={"top_k": 5},
    )
    original = sent[0]
    body = encode_request(decode_request(copy.deepcopy(original)))
    expected = copy.deepcopy(original)
    for message in expected["messages"]:
        message["content"] = _as_blocks(message["content"])
    assert body == expected


def test_content_the_internal_types_do_not_model_round_trips_unchanged() -> None:
    """Documents, search results, server tool blocks and server tools are kept as sent (for an
    Anthropic upstream: ``ChatRequest.opaque`` says where the first one is)."""
    document = {
        "type": "document",
        "title": "Spec",
        "citations": {"enabled": True},
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
    }
    search = {
        "type": "search_result",
        "source": "https://example.com",
        "title": "Ex",
        "content": [{"type": "text", "text": "443"}],
    }
    use = {
        "type": "server_tool_use",
        "id": "srvtoolu_1",
        "name": "web_search",
        "input": {"query": "port"},
    }
    found = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}
    body = {
        "model": "claude-sonnet-4-5", "max_tokens": 100, "context_management": {"edits": []},
        "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 1}],
        "messages": [
            {"role": "user", "content": [document, {"type": "text", "text": "Port?"}]},
            {"role": "assistant", "content": [use, found, {"type": "text", "text": "443."}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                          "content": [search]}]},
        ],
    }  # fmt: skip
    request = decode_request(copy.deepcopy(body))
    assert request.wire == "anthropic" and request.opaque == "a 'document' content block"
    assert encode_request(request) == body


@pytest.mark.parametrize(
    ("change", "param"),
    [
        (lambda b: b.pop("max_tokens"), "max_tokens"),
        (lambda b: b.update(max_tokens=0), "max_tokens"),
        (lambda b: b.pop("model"), "model"),
        (lambda b: b.update(messages=[]), "messages"),
        (lambda b: b["messages"][0].update(role="system"), "messages[0].role"),
        (lambda b: b["messages"][0].update(content=7), "messages[0].content"),
        (
            lambda b: b["messages"][0].update(content=[{"source": {}}]),
            "messages[0].content[0].type",
        ),
        (
            lambda b: b["messages"][0]["content"][1]["source"].update(type="file"),
            "messages[0].content[1].source.type",
        ),
        (
            lambda b: b["messages"][3]["content"].append(
                {"type": "tool_result", "tool_use_id": "x"}
            ),
            "messages[3].content[1].type",
        ),
        (
            lambda b: b["messages"][1]["content"][3].update(input="[]"),
            "messages[1].content[3].input",
        ),
        (
            lambda b: b["messages"][2]["content"][0].pop("tool_use_id"),
            "messages[2].content[0].tool_use_id",
        ),
        (lambda b: b.update(system=[{"type": "image"}]), "system[0]"),
        (lambda b: b.update(tool_choice={"type": "tool"}), "tool_choice.name"),
        (lambda b: b.update(tool_choice={"type": "function"}), "tool_choice"),
        (lambda b: b.update(stop_sequences="END"), "stop_sequences"),
        (lambda b: b.update(temperature="hot"), "temperature"),
        (
            lambda b: b["tools"].append({"type": 7, "name": "s"}),
            "tools[2].type",
        ),
        (lambda b: b.update(thinking=True), "thinking.type"),
        (lambda b: b.update(top_k=-1), "top_k"),
    ],
)
def test_decode_request_names_the_bad_field(change: Callable[[Any], Any], param: str) -> None:
    body = copy.deepcopy(CLAUDE_CODE_BODY)
    change(body)
    with pytest.raises(InvalidRequest) as caught:
        decode_request(body)
    assert caught.value.param == param


def test_decode_request_rejects_a_non_object_body() -> None:
    with pytest.raises(InvalidRequest) as caught:
        decode_request([])
    assert caught.value.param == "body"


# --- requests: OpenAI client → internal → Anthropic upstream ---------------------------------

OPENAI_BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Weather in Paris, and the time?"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/AAA"}},
                {"type": "image_url", "image_url": {"url": "https://x/map.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "reasoning_content": "Two tools needed.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": ""}},
                {
                    "id": "call.3",
                    "type": "function",
                    "function": {"name": "broken", "arguments": '{"city": '},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18°C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "12:00"},
        {"role": "tool", "tool_call_id": "call.3", "content": ""},
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": "Thanks!"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather by city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                "strict": True,
            },
        },
        {"type": "function", "function": {"name": "now"}},
    ],
    "tool_choice": "required",
    "parallel_tool_calls": False,
    "stop": "END",
    "user": "u-1",
    "temperature": 0.2,
    "seed": 7,
    "logit_bias": {"50256": -100},
    "stream": True,
    "stream_options": {"include_usage": True},
    "response_format": {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "schema": {"type": "object", "properties": {"text": {"type": "string"}}},
        },
    },
}


def test_openai_origin_request_becomes_a_valid_anthropic_body() -> None:
    request = openai_request.decode_request(copy.deepcopy(OPENAI_BODY))
    body = encode_request(request, passthrough=False)
    system = body.pop("system")
    assert body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather in Paris, and the time?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/AAA"},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x/map.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": [  # the unsigned reasoning is not sent: Anthropic would reject it
                    {
                        "type": "tool_use",
                        "id": "call_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                    {"type": "tool_use", "id": "call_2", "name": "now", "input": {}},
                    {"type": "tool_use", "id": "call_3", "name": "broken", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "18°C"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": "12:00"},
                    {"type": "tool_result", "tool_use_id": "call_3"},
                    {"type": "text", "text": "Thanks!"},
                ],
            },
        ],
        "stream": True,
        "temperature": 0.2,
        "stop_sequences": ["END"],
        "tools": [
            {
                "name": "get_weather",
                "description": "Weather by city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
            {"name": "now", "input_schema": {"type": "object"}},
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "metadata": {"user_id": "u-1"},
    }
    assert isinstance(system, list)
    assert system[:2] == [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": "Answer in French."},
    ]
    assert system[2]["type"] == "text" and "JSON object" in system[2]["text"]
    assert '{"type":"object","properties":{"text":{"type":"string"}}}' in system[2]["text"]


def test_a_single_plain_system_prompt_is_sent_as_a_string() -> None:
    request = ChatRequest(
        "m",
        (
            Message("system", (TextPart("Be kind."),)),
            Message("user", (TextPart("hi"),)),
        ),
        response_format=ResponseFormat("text"),
    )
    assert encode_request(request)["system"] == "Be kind."


def test_json_object_mode_adds_a_json_only_instruction() -> None:
    request = ChatRequest(
        "m",
        (Message("user", (TextPart("list 3 colours"),)),),
        response_format=ResponseFormat("json_object"),
    )
    system = encode_request(request)["system"]
    assert isinstance(system, str) and "JSON object" in system and "schema" not in system


def test_turns_alternate_and_tool_results_lead_their_user_turn() -> None:
    request = ChatRequest(
        "m",
        (
            Message("user", (TextPart("a"),)),
            Message("user", (TextPart("b"),)),
            Message("assistant", (TextPart("c"),)),
            Message("assistant", (ToolCallPart("call_9", "f", "{}"),)),
            Message("user", (TextPart("(while you work)"),)),
            Message("tool", (ToolResultPart("call_9", (TextPart("ok"),)),)),
            Message("user", (TextPart(""),)),  # nothing to send: dropped
            Message("assistant", (TextPart("fine"),)),
        ),
    )
    assert encode_request(request)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "c"},
                {"type": "tool_use", "id": "call_9", "name": "f", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_9", "content": "ok"},
                {"type": "text", "text": "(while you work)"},
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "fine"}]},
    ]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"a": [1, {"b": null}]}', {"a": [1, {"b": None}]}),
        ("", {}),
        ("   ", {}),
        ("{not json", {}),
        ("[1, 2]", {}),
        ('"text"', {}),
    ],
)
def test_tool_call_arguments_become_an_input_object(arguments: str, expected: Any) -> None:
    request = ChatRequest(
        "m",
        (
            Message("user", (TextPart("go"),)),
            Message("assistant", (ToolCallPart("call_1", "f", arguments),)),
        ),
    )
    assert encode_request(request)["messages"][1]["content"][0]["input"] == expected


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        (None, None, None),
        (ToolChoice("auto"), None, {"type": "auto"}),
        (ToolChoice("required"), None, {"type": "any"}),
        (ToolChoice("none"), None, {"type": "none"}),
        (ToolChoice("tool", "f"), None, {"type": "tool", "name": "f"}),
        (
            ToolChoice("tool", "f"),
            False,
            {"type": "tool", "name": "f", "disable_parallel_tool_use": True},
        ),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (ToolChoice("none"), False, {"type": "none"}),
        (ToolChoice("auto"), True, {"type": "auto"}),
    ],
)
def test_tool_choice_mapping(
    choice: ToolChoice | None, parallel: bool | None, expected: dict[str, Any] | None
) -> None:
    request = ChatRequest(
        "m",
        (Message("user", (TextPart("go"),)),),
        tools=(Tool("f"),),
        tool_choice=choice,
        parallel_tool_calls=parallel,
    )
    assert encode_request(request).get("tool_choice") == expected


@pytest.mark.parametrize(
    ("raw", "choice", "parallel"),
    [
        ({"type": "auto"}, ToolChoice("auto"), None),
        ({"type": "any"}, ToolChoice("required"), None),
        ({"type": "none"}, ToolChoice("none"), None),
        ({"type": "tool", "name": "f"}, ToolChoice("tool", "f"), None),
        ({"type": "any", "disable_parallel_tool_use": True}, ToolChoice("required"), False),
        ({"type": "auto", "disable_parallel_tool_use": False}, ToolChoice("auto"), True),
    ],
)
def test_tool_choice_decoding(
    raw: dict[str, Any], choice: ToolChoice, parallel: bool | None
) -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    request = decode_request({**body, "tool_choice": raw})
    assert (request.tool_choice, request.parallel_tool_calls) == (choice, parallel)


def test_extra_fields_pass_through_only_when_asked() -> None:
    request = decode_request(copy.deepcopy(CLAUDE_CODE_BODY))
    assert encode_request(request)["top_k"] == 40
    plain = encode_request(request, passthrough=False)
    assert "top_k" not in plain and "thinking" not in plain and "service_tier" not in plain


def test_max_tokens_defaults_for_requests_without_one() -> None:
    request = ChatRequest("m", (Message("user", (TextPart("x"),)),))
    assert encode_request(request)["max_tokens"] == 4096
    assert encode_request(ChatRequest("m", request.messages, max_tokens=7))["max_tokens"] == 7


# --- responses, stop reasons, usage -----------------------------------------------------------


def _response(finish: FinishReason = "stop", **kwargs: Any) -> ChatResponse:
    defaults: dict[str, Any] = {
        "id": "chatcmpl-9",
        "model": "gpt-4o",
        "message": Message("assistant", (TextPart("Hi"),)),
        "finish_reason": finish,
        "usage": Usage(input_tokens=10, output_tokens=2),
    }
    return ChatResponse(**{**defaults, **kwargs})


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
        ("error", "end_turn"),
    ],
)
def test_encode_stop_reasons(finish: FinishReason, stop_reason: str) -> None:
    assert encode_response(_response(finish))["stop_reason"] == stop_reason


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_decode_stop_reasons(stop_reason: str, finish: FinishReason) -> None:
    body = {"id": "msg_1", "model": "c", "content": [], "stop_reason": stop_reason}
    assert decode_response(body).finish_reason == finish


def test_usage_arithmetic_with_cache_tokens() -> None:
    usage = Usage(input_tokens=1000, output_tokens=50, cached_tokens=600, cache_write_tokens=300)
    wire = encode_usage(usage)
    assert wire == {
        "input_tokens": 100,
        "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": 600,
        "output_tokens": 50,
    }
    assert decode_usage(wire) == usage
    assert decode_usage(
        {"input_tokens": 7, "output_tokens": 3, "cache_read_input_tokens": None}
    ) == Usage(input_tokens=7, output_tokens=3)
    assert decode_usage(None) == Usage()


def test_encode_response_builds_an_anthropic_message() -> None:
    message = Message(
        "assistant",
        (
            ThinkingPart("Plan.", "sig"),
            ThinkingPart("opaque", redacted=True),
            TextPart("Calling."),
            TextPart(""),
            ToolCallPart("call_1", "f", '{"x": 1}'),
            ToolCallPart("", "g", "oops"),
        ),
    )
    usage = Usage(input_tokens=500, output_tokens=40, cached_tokens=400, cache_write_tokens=0)
    body = encode_response(_response("tool_calls", message=message, usage=usage), "claude-x")
    tool_ids = [b.pop("id") for b in body["content"] if b["type"] == "tool_use"]
    assert tool_ids[0] == "call_1" and tool_ids[1].startswith("toolu_") and len(tool_ids[1]) > 6
    assert body == {
        "id": "msg_chatcmpl-9",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "Plan.", "signature": "sig"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "Calling."},
            {"type": "tool_use", "name": "f", "input": {"x": 1}},
            {"type": "tool_use", "name": "g", "input": {}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 100,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 400,
            "output_tokens": 40,
        },
    }
    assert encode_response(_response(id="msg_abc"))["id"] == "msg_abc"
    assert encode_response(_response(id=""))["id"].startswith("msg_")


UPSTREAM_MESSAGE: dict[str, Any] = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "thinking", "thinking": "Need the weather.", "signature": "EqQBCgIYAh"},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
        {"type": "text", "text": "Checking.", "citations": None},
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
        {
            "type": "tool_use",
            "id": "toolu_01A09q90qw90lq917835lq9",
            "name": "get_weather",
            "input": {"location": "San Francisco, CA"},
        },
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 50,
        "cache_creation_input_tokens": 1000,
        "cache_read_input_tokens": 2000,
        "output_tokens": 120,
        "service_tier": "standard",
    },
}


def test_decode_response_reads_an_upstream_message() -> None:
    response = decode_response(UPSTREAM_MESSAGE)
    assert response == ChatResponse(
        id="msg_01XFDUDYJgAACzvnptvVoYEL",
        model="claude-sonnet-4-5-20250929",
        message=Message(
            "assistant",
            (
                ThinkingPart("Need the weather.", "EqQBCgIYAh"),
                ThinkingPart("EmwKAhgBEgy3va3pzix", redacted=True),
                TextPart("Checking."),
                ToolCallPart(
                    "toolu_01A09q90qw90lq917835lq9",
                    "get_weather",
                    '{"location":"San Francisco, CA"}',
                ),
            ),
        ),
        finish_reason="tool_calls",
        usage=Usage(
            input_tokens=3050, output_tokens=120, cached_tokens=2000, cache_write_tokens=1000
        ),
    )


def test_response_round_trip_keeps_content_and_usage() -> None:
    body = encode_response(decode_response(UPSTREAM_MESSAGE))
    expected = copy.deepcopy(UPSTREAM_MESSAGE)
    del expected["content"][3]  # a server tool block has no internal counterpart
    del expected["content"][2]["citations"]
    del expected["usage"]["service_tier"]
    assert body == expected


def test_decode_response_without_content_is_an_upstream_failure() -> None:
    with pytest.raises(UpstreamUnavailable):
        decode_response({"type": "message", "id": "msg_1"})


def test_the_sdk_parses_an_encoded_response() -> None:
    httpx = pytest.importorskip("httpx2")
    body = encode_response(decode_response(UPSTREAM_MESSAGE), "claude-public-name")
    client = _sdk_client(lambda request: httpx.Response(200, json=body))
    message = client.messages.create(
        model="claude-public-name", max_tokens=10, messages=[{"role": "user", "content": "x"}]
    )
    assert [b.type for b in message.content] == [
        "thinking",
        "redacted_thinking",
        "text",
        "tool_use",
    ]
    assert message.content[3].input == {"location": "San Francisco, CA"}
    assert message.stop_reason == "tool_use"
    assert message.model == "claude-public-name"
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (50, 2000)


# --- upstream streams: SSE bytes → StreamDecoder → chunks --------------------------------------

RECORDED_STREAM = """\
event: message_start
data: {"type":"message_start","message":{"id":"msg_01Aq9w938a90dw8q","type":"message",\
"role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,\
"stop_sequence":null,"usage":{"input_tokens":472,"cache_creation_input_tokens":1200,\
"cache_read_input_tokens":3000,"output_tokens":2}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking",\
"thinking":"","signature":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta",\
"thinking":"The user wants the weather "}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta",\
"thinking":"in Zürich — I should call the tool."}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta",\
"signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Let me "}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"check ☀️."}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use",\
"id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta",\
"partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta",\
"partial_json":"{\\"location\\":"}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta",\
"partial_json":" \\"Zürich, CH\\""}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta",\
"partial_json":", \\"unit\\": \\"c"}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta",\
"partial_json":"elsius\\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},\
"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}

""".encode()

EXPECTED_CHUNKS = [
    ChatChunk(
        thinking="The user wants the weather ",
        id="msg_01Aq9w938a90dw8q",
        model="claude-sonnet-4-5-20250929",
    ),
    ChatChunk(thinking="in Zürich — I should call the tool."),
    ChatChunk(thinking_signature="EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"),
    ChatChunk(text="Let me "),
    ChatChunk(text="check ☀️."),
    ChatChunk(tool_call=ToolCallDelta(0, id="toolu_01T1x1fJ34qAmk2tNTrN7Up6", name="get_weather")),
    ChatChunk(tool_call=ToolCallDelta(0, arguments='{"location":')),
    ChatChunk(tool_call=ToolCallDelta(0, arguments=' "Zürich, CH"')),
    ChatChunk(tool_call=ToolCallDelta(0, arguments=', "unit": "c')),
    ChatChunk(tool_call=ToolCallDelta(0, arguments='elsius"}')),
    ChatChunk(finish_reason="tool_calls"),
    ChatChunk(
        usage=Usage(
            input_tokens=4672, output_tokens=89, cached_tokens=3000, cache_write_tokens=1200
        )
    ),
]


def _decode_stream(pieces: Iterable[bytes]) -> list[ChatChunk]:
    sse, decoder = SSEDecoder(), StreamDecoder("anthropic")
    chunks: list[ChatChunk] = []
    for piece in pieces:
        for event in sse.feed(piece):
            chunks += decoder.feed(event.event, orjson.loads(event.data))
    for event in sse.close():
        chunks += decoder.feed(event.event, orjson.loads(event.data))
    return chunks


def test_recorded_stream_decodes_to_the_expected_chunks() -> None:
    assert _decode_stream([RECORDED_STREAM]) == EXPECTED_CHUNKS


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_recorded_stream_decodes_identically_at_every_byte_boundary(newline: bytes) -> None:
    raw = RECORDED_STREAM.replace(b"\n", newline)
    for cut in range(1, len(raw)):
        assert _decode_stream([raw[:cut], raw[cut:]]) == EXPECTED_CHUNKS, f"split at byte {cut}"
    assert _decode_stream(raw[i : i + 1] for i in range(len(raw))) == EXPECTED_CHUNKS


def test_the_reassembled_tool_input_is_valid_json() -> None:
    arguments = "".join(c.tool_call.arguments for c in EXPECTED_CHUNKS if c.tool_call)
    assert json.loads(arguments) == {"location": "Zürich, CH", "unit": "celsius"}


def test_decoder_falls_back_to_the_event_name_and_ignores_unknown_events() -> None:
    decoder = StreamDecoder()
    decoder.feed("message_start", {"message": {"id": "msg_1", "model": "c", "usage": {}}})
    assert decoder.feed("ping", {"type": "ping"}) == []
    assert decoder.feed("future_event", {"type": "future_event"}) == []
    text = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": "Hi"},
    }
    assert decoder.feed(None, text) == [ChatChunk(text="Hi", id="msg_1", model="c")]
    # deltas of blocks the decoder does not track (server tools) are dropped
    server = {"type": "input_json_delta", "partial_json": "{}"}
    assert decoder.feed(None, {"type": "content_block_delta", "index": 5, "delta": server}) == []


@pytest.mark.parametrize(
    ("kind", "error_class", "status"),
    [
        ("overloaded_error", UpstreamUnavailable, 502),
        ("api_error", UpstreamUnavailable, 502),
        ("rate_limit_error", UpstreamRateLimited, 429),
        ("invalid_request_error", UpstreamBadRequest, 400),
        ("timeout_error", UpstreamTimeout, 504),
    ],
)
def test_stream_error_event_raises_the_mapped_error(
    kind: str, error_class: type[ProviderError], status: int
) -> None:
    decoder = StreamDecoder("claude-upstream")
    decoder.feed("message_start", {"type": "message_start", "message": {"id": "msg_1"}})
    event = {"type": "error", "error": {"type": kind, "message": "Overloaded"}}
    with pytest.raises(error_class) as caught:
        decoder.feed("error", event)
    assert caught.value.status == status
    assert caught.value.provider == "claude-upstream"
    assert "Overloaded" in caught.value.message


def test_message_delta_usage_replaces_the_start_counts() -> None:
    decoder = StreamDecoder()
    start = {"id": "msg_1", "usage": {"input_tokens": 10, "output_tokens": 1}}
    decoder.feed(None, {"type": "message_start", "message": start})
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "max_tokens"},
        "usage": {"output_tokens": 30, "input_tokens": 12, "cache_read_input_tokens": 5},
    }
    assert decoder.feed(None, delta) == [ChatChunk(finish_reason="length", id="msg_1", model=None)]
    assert decoder.feed(None, {"type": "message_stop"}) == [
        ChatChunk(usage=Usage(input_tokens=17, output_tokens=30, cached_tokens=5))
    ]


# --- client streams: chunks → StreamEncoder → Anthropic events ---------------------------------


def _delta(index: int, delta: dict[str, Any]) -> Event:
    return "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}


def _start(index: int, block: dict[str, Any]) -> Event:
    return "content_block_start", {
        "type": "content_block_start",
        "index": index,
        "content_block": block,
    }


def _stop(index: int) -> Event:
    return "content_block_stop", {"type": "content_block_stop", "index": index}


OPENAI_STYLE_CHUNKS = [
    ChatChunk(thinking="Hmm, "),
    ChatChunk(thinking="weather."),
    ChatChunk(thinking_signature="sig1"),
    ChatChunk(text="Checking"),
    ChatChunk(text=" now."),
    ChatChunk(tool_call=ToolCallDelta(0, id="call_1", name="get_weather", arguments='{"city":')),
    ChatChunk(tool_call=ToolCallDelta(0, arguments='"Paris"}')),
    ChatChunk(tool_call=ToolCallDelta(1, id="call_2", name="now", arguments="")),
    ChatChunk(tool_call=ToolCallDelta(1, arguments="{}")),
    ChatChunk(finish_reason="tool_calls"),
    ChatChunk(usage=Usage(input_tokens=900, output_tokens=42, cached_tokens=800)),
]


def _encode_all(chunks: list[ChatChunk]) -> tuple[StreamEncoder, list[list[Event]], list[Event]]:
    encoder = StreamEncoder()
    per_chunk = [encoder.start("chatcmpl-7", "claude-x", 900)]
    per_chunk += [encoder.encode(c) for c in chunks]
    return encoder, per_chunk, encoder.finish()


def test_stream_encoder_switches_blocks_without_dropping_first_deltas() -> None:
    _, per_chunk, closing = _encode_all(OPENAI_STYLE_CHUNKS)
    assert per_chunk[0] == [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_chatcmpl-7",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-x",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": 900,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                        "output_tokens": 0,
                    },
                },
            },
        )
    ]
    thinking = {"type": "thinking", "thinking": "", "signature": ""}
    tool_1 = {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}}
    tool_2 = {"type": "tool_use", "id": "call_2", "name": "now", "input": {}}
    assert per_chunk[1:] == [
        [_start(0, thinking), _delta(0, {"type": "thinking_delta", "thinking": "Hmm, "})],
        [_delta(0, {"type": "thinking_delta", "thinking": "weather."})],
        [_delta(0, {"type": "signature_delta", "signature": "sig1"})],
        [
            _stop(0),
            _start(1, {"type": "text", "text": ""}),
            _delta(1, {"type": "text_delta", "text": "Checking"}),
        ],
        [_delta(1, {"type": "text_delta", "text": " now."})],
        [
            _stop(1),
            _start(2, tool_1),
            _delta(2, {"type": "input_json_delta", "partial_json": '{"city":'}),
        ],
        [_delta(2, {"type": "input_json_delta", "partial_json": '"Paris"}'})],
        [_stop(2), _start(3, tool_2)],
        [_delta(3, {"type": "input_json_delta", "partial_json": "{}"})],
        [_stop(3)],
        [],  # usage arrives after the finish reason: nothing is sent until finish()
    ]
    assert closing == [
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {
                    "input_tokens": 100,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 800,
                    "output_tokens": 42,
                },
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


def test_stream_encoder_finish_is_sent_once_and_usage_argument_wins() -> None:
    encoder = StreamEncoder()
    encoder.encode(ChatChunk(text="x", id="abc", model="m"))
    encoder.encode(ChatChunk(usage=Usage(input_tokens=1, output_tokens=1)))
    closing = encoder.finish(Usage(input_tokens=5, output_tokens=9))
    assert [name for name, _ in closing] == ["content_block_stop", "message_delta", "message_stop"]
    assert closing[1][1]["usage"]["output_tokens"] == 9
    assert closing[1][1]["delta"]["stop_reason"] == "end_turn"
    assert encoder.finish() == []


def test_stream_encoder_without_chunks_still_makes_a_valid_stream() -> None:
    events = StreamEncoder().finish()
    assert [name for name, _ in events] == ["message_start", "message_delta", "message_stop"]
    assert events[0][1]["message"]["id"].startswith("msg_")
    assert events[1][1]["usage"] == {"output_tokens": 0}


def test_stream_encoder_splits_consecutive_signed_thinking_blocks() -> None:
    encoder = StreamEncoder()
    encoder.start("msg_1", "m")
    events: list[Event] = []
    for chunk in [
        ChatChunk(thinking="a"),
        ChatChunk(thinking_signature="s1"),
        ChatChunk(thinking="b"),
        ChatChunk(thinking_signature="s2"),
    ]:
        events += encoder.encode(chunk)
    assert [(name, body.get("index")) for name, body in events] == [
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_delta", 1),
    ]


def test_stream_encoder_generates_tool_ids_and_routes_late_argument_pieces() -> None:
    encoder = StreamEncoder()
    encoder.start("msg_1", "m")
    events = encoder.encode(ChatChunk(tool_call=ToolCallDelta(0, name="f")))
    events += encoder.encode(ChatChunk(tool_call=ToolCallDelta(1, id="call_b", name="g")))
    events += encoder.encode(ChatChunk(tool_call=ToolCallDelta(0, arguments="{}")))
    assert events[0][1]["content_block"]["id"].startswith("toolu_")
    assert events[-1] == _delta(0, {"type": "input_json_delta", "partial_json": "{}"})
    closing = encoder.finish()
    assert closing[0] == _stop(1)
    assert closing[1][1]["delta"]["stop_reason"] == "tool_use"  # tool calls, no finish reason


def test_encoded_stream_decodes_back_to_the_same_chunks() -> None:
    encoder = StreamEncoder()
    events = encoder.start("msg_01Aq9w938a90dw8q", "claude-sonnet-4-5-20250929", 472)
    for chunk in EXPECTED_CHUNKS:
        events += encoder.encode(chunk)
    events += encoder.finish()
    raw = b"".join(frame(name, body) for name, body in events)
    assert _decode_stream([raw]) == EXPECTED_CHUNKS


def test_the_sdk_accumulates_an_encoded_stream() -> None:
    httpx = pytest.importorskip("httpx2")
    _, per_chunk, closing = _encode_all(OPENAI_STYLE_CHUNKS)
    events = [event for events in per_chunk for event in events]
    events.insert(1, ping())
    raw = b"".join(frame(name, body) for name, body in [*events, *closing])

    def handler(request: Any) -> Any:
        return httpx.Response(200, content=raw, headers={"content-type": "text/event-stream"})

    with _sdk_client(handler).messages.stream(
        model="claude-x", max_tokens=10, messages=[{"role": "user", "content": "x"}]
    ) as stream:
        message = stream.get_final_message()
    assert message.id == "msg_chatcmpl-7"
    assert [b.model_dump(exclude_none=True) for b in message.content] == [
        {"type": "thinking", "thinking": "Hmm, weather.", "signature": "sig1"},
        {"type": "text", "text": "Checking now."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "now", "input": {}},
    ]
    assert message.stop_reason == "tool_use"
    assert message.usage.input_tokens == 100
    assert message.usage.cache_read_input_tokens == 800
    assert message.usage.output_tokens == 42


def test_frame_is_an_sse_event() -> None:
    assert frame("ping", {"type": "ping"}) == b'event: ping\ndata: {"type":"ping"}\n\n'


# --- errors ------------------------------------------------------------------------------------


class _Overloaded(GatewayError):
    status = 529


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (InvalidRequest("bad"), "invalid_request_error"),
        (PayloadTooLarge("big"), "request_too_large"),
        (AuthError("who"), "authentication_error"),
        (PermissionDenied("no"), "permission_error"),
        (ModelNotFound("gone"), "not_found_error"),
        (RateLimited("slow"), "rate_limit_error"),
        (UpstreamRateLimited("slow"), "rate_limit_error"),
        (UpstreamBadRequest("bad"), "invalid_request_error"),
        (GatewayError("oops"), "api_error"),
        (UpstreamUnavailable("down"), "api_error"),
        (UpstreamAuthFailed("keys"), "api_error"),
        (UpstreamTimeout("slow"), "timeout_error"),
        (_Overloaded("busy"), "overloaded_error"),
    ],
)
def test_encode_error_uses_anthropic_error_types(error: GatewayError, kind: str) -> None:
    assert encode_error(error) == {
        "type": "error",
        "error": {"type": kind, "message": error.message},
    }


def _error_body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_1"}


@pytest.mark.parametrize(
    ("status", "kind", "error_class", "gateway_status"),
    [
        (400, "invalid_request_error", UpstreamBadRequest, 400),
        (413, "request_too_large", UpstreamBadRequest, 400),
        (404, "not_found_error", UpstreamBadRequest, 404),
        (401, "authentication_error", UpstreamAuthFailed, 502),
        (403, "permission_error", UpstreamAuthFailed, 502),
        (500, "api_error", UpstreamUnavailable, 502),
        (529, "overloaded_error", UpstreamUnavailable, 502),
        (504, "timeout_error", UpstreamTimeout, 504),
    ],
)
def test_decode_error_maps_statuses(
    status: int, kind: str, error_class: type[ProviderError], gateway_status: int
) -> None:
    error = decode_error(status, _error_body(kind, "details here"), {}, "anthropic")
    assert type(error) is error_class
    assert error.status == gateway_status
    assert error.upstream_status == status
    assert error.provider == "anthropic"
    assert "details here" in error.message


def test_decode_error_keeps_retry_after_and_marks_overload() -> None:
    limited = decode_error(429, _error_body("rate_limit_error", "slow"), {"retry-after": "7"}, "a")
    assert isinstance(limited, UpstreamRateLimited)
    assert limited.retry_after == 7.0 and limited.headers["retry-after"] == "7"
    overloaded = decode_error(529, _error_body("overloaded_error", "Overloaded"), {}, "a")
    assert overloaded.code == "overloaded_error" and overloaded.retryable
    assert decode_error(502, "<html>", {}, "a").message == "a: upstream HTTP 502"


def test_the_sdk_reads_encoded_errors() -> None:
    anthropic = pytest.importorskip("anthropic")
    httpx = pytest.importorskip("httpx2")
    body = encode_error(RateLimited("too many requests"))
    client = _sdk_client(lambda request: httpx.Response(429, json=body))
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="m", max_tokens=1, messages=[{"role": "user", "content": "x"}])
    assert caught.value.body == body
