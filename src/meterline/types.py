"""The internal request/response types every surface and provider translates to and from.

A surface decodes its wire format into a :class:`ChatRequest`; the pipeline works only with these
types; a provider turns a :class:`ChatRequest` into its upstream's wire format and answers with a
:class:`ChatResponse` or a :data:`ChunkStream`.

Conventions:

* System prompts are messages with ``role="system"`` at the start of ``messages``.
* Tool results are messages with ``role="tool"`` holding one :class:`ToolResultPart` each.
* ``Usage.input_tokens`` counts *all* prompt tokens, including cache reads and cache writes;
  ``Usage.output_tokens`` counts *all* completion tokens, including reasoning tokens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]

__all__ = [
    "ChatChunk",
    "ChatRequest",
    "ChatResponse",
    "ChunkStream",
    "ContentPart",
    "FinishReason",
    "ImagePart",
    "LastBatch",
    "Message",
    "OpaquePart",
    "Principal",
    "RelayBatch",
    "Relayed",
    "ResponseFormat",
    "Role",
    "TextPart",
    "ThinkingPart",
    "Tool",
    "ToolCallDelta",
    "ToolCallPart",
    "ToolChoice",
    "ToolResultPart",
    "Usage",
    "first_opaque",
]


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str
    cache_control: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image, either by URL or inline (``data`` is base64 without the ``data:`` prefix)."""

    url: str | None = None
    data: str | None = None
    media_type: str | None = None
    detail: str | None = None

    @property
    def data_url(self) -> str:
        if self.url is not None:
            return self.url
        return f"data:{self.media_type or 'image/png'};base64,{self.data}"


@dataclass(frozen=True, slots=True)
class ThinkingPart:
    text: str
    signature: str | None = None
    redacted: bool = False


@dataclass(frozen=True, slots=True)
class ToolCallPart:
    """A tool call made by the assistant; ``arguments`` is the JSON text, as OpenAI sends it."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class OpaquePart:
    """Content the internal types do not model — an Anthropic ``document`` or server tool
    block, an OpenAI ``file`` or ``input_audio`` part — kept as the client sent it (``raw``).

    Only an upstream that speaks the client's wire format (``wire``) can take it, and gets it
    unchanged; the request is not translated for any other (see ``ChatRequest.opaque``).
    Nothing reads its contents: classification, compression and the semantic cache see text."""

    wire: str
    raw: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.raw.get("type"))


@dataclass(frozen=True, slots=True)
class ToolResultPart:
    tool_call_id: str
    content: tuple[TextPart | ImagePart | OpaquePart, ...]
    is_error: bool = False

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


ContentPart = TextPart | ImagePart | ThinkingPart | ToolCallPart | ToolResultPart | OpaquePart


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    parts: tuple[ContentPart, ...]
    name: str | None = None

    @property
    def text(self) -> str:
        """The concatenated text parts (what a token counter or classifier reads)."""
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    @property
    def tool_calls(self) -> tuple[ToolCallPart, ...]:
        return tuple(p for p in self.parts if isinstance(p, ToolCallPart))


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call. ``raw``: a tool the internal type does not model
    (Anthropic's server tools — web search, code execution… —, OpenAI's custom tools), kept as
    the client sent it, for upstreams of the client's wire format only, like :class:`OpaquePart`."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    strict: bool | None = None
    cache_control: dict[str, Any] | None = None
    raw: dict[str, Any] | None = None


def first_opaque(messages: tuple[Message, ...], tools: tuple[Tool, ...]) -> str | None:
    """What the request holds that only its own wire format can carry (for ``opaque``), e.g.
    ``a 'document' content block``; ``None`` when everything in it can be translated."""
    for message in messages:
        for part in message.parts:
            if isinstance(part, ToolResultPart):
                part = next((p for p in part.content if isinstance(p, OpaquePart)), part)
            if isinstance(part, OpaquePart):
                return f"a {part.kind!r} content block"
    for tool in tools:
        if tool.raw is not None:
            return f"a {str(tool.raw.get('type'))!r} tool"
    return None


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """``auto`` | ``none`` | ``required`` (any tool) | ``tool`` (the one named)."""

    mode: Literal["auto", "none", "required", "tool"]
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat request, independent of the wire format it arrived in.

    ``extra`` carries parameters the surface accepted but the internal type does not model
    (e.g. ``logit_bias``); providers speaking the same wire format pass them through.

    ``wire`` is the wire format the client spoke (``"openai"``, ``"anthropic"``; ``None`` for a
    request the gateway made itself). An upstream of that same format gets everything the
    client sent that the internal types do not model — ``extra``, :class:`OpaquePart` content,
    ``raw`` tools, ``wire_headers`` — and its answer goes back to the client as it came
    (:class:`Relayed`, :class:`RelayBatch`). ``opaque`` names the request's first opaque
    content or tool, or OpenAI's ``n`` > 1, if any: such a request cannot be translated for
    another format.
    """

    model: str
    messages: tuple[Message, ...]
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    user: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    wire: str | None = None
    opaque: str | None = None
    wire_headers: dict[str, str] = field(default_factory=dict)

    def with_model(self, model: str) -> ChatRequest:
        """This request for ``model`` (itself when that is already its model: no copy)."""
        return self if model == self.model else replace(self, model=model)

    @property
    def wants_vision(self) -> bool:
        return any(isinstance(p, ImagePart) for m in self.messages for p in m.parts)


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class ChatResponse:
    id: str
    model: str
    message: Message
    finish_reason: FinishReason
    usage: Usage
    created: int = 0
    system_fingerprint: str | None = None
    relayed: Relayed | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Relayed:
    """An upstream's whole answer in the wire format the client speaks, to be sent on as it
    came, with only the model name the client sees put in: logprobs, citations, server tool
    blocks, refusals and fields added to the API later reach the client, though the internal
    types hold none of them. Only providers whose format is the request's ``wire`` set it."""

    wire: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a streamed tool call: ``id``/``name`` arrive first, ``arguments`` in pieces."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(slots=True)  # not frozen: built per streamed event, and frozen __init__ costs 2x
class ChatChunk:
    """One streamed delta. Any combination of fields may be set; most chunks set one."""

    text: str | None = None
    thinking: str | None = None
    thinking_signature: str | None = None
    tool_call: ToolCallDelta | None = None
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    id: str | None = None
    model: str | None = None


ChunkStream = AsyncIterator[list[ChatChunk]]
"""A streamed answer: each item holds the chunks one upstream read carried (at least one).

Chunks travel in these batches so that the gateway handles, and writes to the client, once per
upstream read rather than once per chunk: an upstream that sends ten events in one packet costs
one pass through the pipeline's stream layers and one socket write, not ten."""


class LastBatch(list[ChatChunk]):
    """A stream's batch after which the stream ends without waiting for the upstream again (its
    answer had ended by the read that carried it). A surface may hold this batch's bytes back
    and send them with the end of its own answer: one socket write instead of two, and nothing
    is later for it. Only a hint: a layer that rebuilds batches may drop it."""

    __slots__ = ()


class RelayBatch(list[ChatChunk]):
    """A stream's batch that also carries the upstream's own events for it, framed in the
    client's wire format (``wire``, possibly with events that made no chunk, such as ``ping``),
    to be sent instead of events encoded anew from the chunks (see :class:`Relayed`). ``last``:
    as :class:`LastBatch`, the stream ends after it."""

    __slots__ = ("last", "wire")

    def __init__(self, chunks: list[ChatChunk], wire: bytes, last: bool = False) -> None:
        super().__init__(chunks)
        self.wire = wire
        self.last = last


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: resolved from the API key by the auth stage (anonymous until then)."""

    tenant: str = "default"
    team: str | None = None
    user: str | None = None
    key_id: str | None = None
