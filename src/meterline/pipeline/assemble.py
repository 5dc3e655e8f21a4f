"""Turning a stream into a response and a response back into a stream.

The cache stores whole responses; a streamed answer is assembled as it passes, and a cached
answer is replayed as chunks when the client asked for a stream.
"""

from __future__ import annotations

from meterline.types import (
    ChatChunk,
    ChatResponse,
    ChunkStream,
    ContentPart,
    FinishReason,
    LastBatch,
    Message,
    TextPart,
    ThinkingPart,
    ToolCallDelta,
    ToolCallPart,
    Usage,
)

__all__ = ["Assembler", "replay"]


class Assembler:
    def __init__(self) -> None:
        self._text: list[str] = []
        self._thinking: list[str] = []
        self._signature: str | None = None
        self._calls: dict[int, list[str]] = {}
        self._heads: dict[int, tuple[str, str]] = {}
        self.finish: FinishReason | None = None
        self.usage: Usage | None = None

    def feed(self, chunk: ChatChunk) -> None:
        if chunk.text:
            self._text.append(chunk.text)
        if chunk.thinking:
            self._thinking.append(chunk.thinking)
        if chunk.thinking_signature:
            self._signature = chunk.thinking_signature
        call = chunk.tool_call
        if call is not None:
            if call.index not in self._heads:
                self._heads[call.index] = (call.id or f"call_{call.index}", call.name or "")
            self._calls.setdefault(call.index, []).append(call.arguments)
        if chunk.finish_reason is not None:
            self.finish = chunk.finish_reason
        if chunk.usage is not None:
            self.usage = chunk.usage

    def produced(self) -> str:
        """Everything the model wrote so far (thinking, text, tool names and arguments), for
        counting its tokens when the upstream reports no usage."""
        names = [name for _, name in self._heads.values()]
        arguments = ["".join(pieces) for pieces in self._calls.values()]
        return "".join(self._thinking + self._text + names + arguments)

    def response(self, response_id: str, model: str) -> ChatResponse:
        parts: list[ContentPart] = []
        if self._thinking:
            parts.append(ThinkingPart("".join(self._thinking), self._signature))
        if self._text:
            parts.append(TextPart("".join(self._text)))
        for index in sorted(self._heads):
            call_id, name = self._heads[index]
            parts.append(ToolCallPart(call_id, name, "".join(self._calls[index])))
        return ChatResponse(
            id=response_id,
            model=model,
            message=Message("assistant", tuple(parts)),
            finish_reason=self.finish or "stop",
            usage=self.usage or Usage(),
        )


async def replay(response: ChatResponse, usage: Usage | None = None) -> ChunkStream:
    """``response`` as a stream of one batch: thinking, text, each tool call, the finish, the
    usage (a stored answer arrives all at once, so it is written to the client at once, with
    the stream's end)."""
    chunks = LastBatch()
    for part in response.message.parts:
        if isinstance(part, ThinkingPart):
            chunks.append(ChatChunk(thinking=part.text, thinking_signature=part.signature))
        elif isinstance(part, TextPart):
            chunks.append(ChatChunk(text=part.text))
    for index, call in enumerate(response.message.tool_calls):
        chunks.append(ChatChunk(tool_call=ToolCallDelta(index, call.id, call.name, "")))
        chunks.append(ChatChunk(tool_call=ToolCallDelta(index, arguments=call.arguments)))
    chunks.append(ChatChunk(finish_reason=response.finish_reason))
    chunks.append(ChatChunk(usage=usage or response.usage))
    yield chunks
