"""What a simulated model answers: deterministic text, tool calls or JSON, with real token counts.

Shared by every simulated provider so that each one differs only in its wire format.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from meterline.tokens import count_messages, encoding_for
from meterline.types import ChatRequest, ToolResultPart

__all__ = ["PlannedCall", "Reply", "last_user_text", "plan_reply"]

_WORDS = (
    "the",
    "gateway",
    "routes",
    "each",
    "request",
    "to",
    "a",
    "model",
    "that",
    "fits",
    "its",
    "task",
    "and",
    "budget",
    "while",
    "every",
    "token",
    "is",
    "counted",
    "and",
    "priced",
    "exactly",
    "so",
    "that",
    "teams",
    "can",
    "see",
    "what",
    "they",
    "spend",
    "and",
    "why",
)
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


@dataclass(frozen=True, slots=True)
class PlannedCall:
    id: str
    name: str
    arguments: str

    @property
    def argument_pieces(self) -> list[str]:
        """The arguments cut in pieces, the way upstreams stream them."""
        step = max(1, len(self.arguments) // 3)
        return [self.arguments[i : i + step] for i in range(0, len(self.arguments), step)]


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    pieces: list[str]
    tool_calls: list[PlannedCall]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int


def last_user_text(request: ChatRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            return message.text
    return ""


def _answer_text(request: ChatRequest, seed: int) -> str:
    question = last_user_text(request)
    if request.response_format is not None and request.response_format.type != "text":
        return orjson.dumps({"answer": question[:40], "confidence": 0.9}).decode()
    length = 12 + seed % 40
    words = [_WORDS[(seed + i) % len(_WORDS)] for i in range(length)]
    return f"Re: {question[:40]}. " + " ".join(words) + "."


def _client_tools(request: ChatRequest) -> list[str]:
    """The tools the client runs itself (server tools, ``raw``, run at the upstream)."""
    return [t.name for t in request.tools if t.raw is None]


def _wants_tool(request: ChatRequest) -> bool:
    if not _client_tools(request) or (request.tool_choice and request.tool_choice.mode == "none"):
        return False
    last = request.messages[-1]
    return not any(isinstance(p, ToolResultPart) for p in last.parts)


def _tool_call(request: ChatRequest, seed: int) -> PlannedCall:
    choice = request.tool_choice
    name = (
        choice.name
        if choice and choice.mode == "tool" and choice.name
        else _client_tools(request)[0]
    )
    arguments = orjson.dumps({"query": last_user_text(request)[:60], "limit": 3}).decode()
    return PlannedCall(f"call_{seed:08x}", name, arguments)


def plan_reply(
    request: ChatRequest, cached: Callable[[str, int], int], text: str | None = None
) -> Reply:
    """The simulated answer to ``request``; ``cached`` says how many prompt tokens were cached;
    ``text``, when given, is the answer (a test scripting what the model says)."""
    prompt_text = "".join(m.text for m in request.messages)
    seed = int.from_bytes(hashlib.sha256(prompt_text.encode()).digest()[:4], "big")
    enc = encoding_for(request.model)
    prompt_tokens = count_messages(request, request.model)
    reasoning = 64 + seed % 128 if request.model.startswith(_REASONING_PREFIXES) else 0
    if text is None and _wants_tool(request):
        call = _tool_call(request, seed)
        completion = len(enc.encode(call.name + call.arguments)) + 10
        return Reply("", [], [call], "tool_calls", prompt_tokens, completion + reasoning,
                     cached(prompt_text, prompt_tokens), reasoning)  # fmt: skip
    tokens = enc.encode(text if text is not None else _answer_text(request, seed))
    finish = "stop"
    if request.max_tokens is not None:
        # Like OpenAI, the limit covers the hidden reasoning tokens and the visible answer.
        reasoning = min(reasoning, request.max_tokens)
        room = request.max_tokens - reasoning
        if len(tokens) > room:
            tokens, finish = tokens[:room], "length"
    pieces = [enc.decode(tokens[i : i + 2]) for i in range(0, len(tokens), 2)]
    return Reply("".join(pieces), pieces, [], finish, prompt_tokens, len(tokens) + reasoning,
                 cached(prompt_text, prompt_tokens), reasoning)  # fmt: skip
