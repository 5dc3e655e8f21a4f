"""The worst-case cost of a request, reserved before it is sent.

It must be an upper bound, or concurrent requests could overspend a budget. Every tokenizer
the providers use is byte-level (BPE or SentencePiece with byte fallback), so a prompt never has
more tokens than UTF-8 bytes, plus a fixed framing allowance per message; and the answer never
has more than ``max_tokens`` (or the model's own output limit). Each kind of token is priced at
the dearest rate it could be billed at. The difference is released when the request settles.
"""

from __future__ import annotations

import orjson

from meterline.catalog import ModelInfo, PicoUSD
from meterline.types import (
    ChatRequest,
    ImagePart,
    OpaquePart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)

__all__ = ["prompt_token_bound", "worst_case_cost"]

_PER_MESSAGE = 16
_PER_IMAGE = 6_400  # above the largest per-image charge of any provider we price


def _part_bytes(part: object) -> int:
    if isinstance(part, TextPart | ThinkingPart):
        return len(part.text.encode())
    if isinstance(part, ToolCallPart):
        return len(part.name.encode()) + len(part.arguments.encode())
    if isinstance(part, ToolResultPart):
        return sum(_part_bytes(p) for p in part.content)
    if isinstance(part, ImagePart):
        return _PER_IMAGE
    if isinstance(part, OpaquePart):  # a document, a server tool's result…: its JSON's bytes
        return len(orjson.dumps(part.raw))
    return 0


def prompt_token_bound(request: ChatRequest) -> int:
    total = 0
    for message in request.messages:
        total += _PER_MESSAGE
        for part in message.parts:
            total += _part_bytes(part)
    for tool in request.tools:
        total += _PER_MESSAGE + len(tool.name) + len(tool.description or "")
        total += len(repr(tool.parameters).encode())
        if tool.raw is not None:
            total += len(orjson.dumps(tool.raw))
    return total


def worst_case_cost(request: ChatRequest, model: ModelInfo) -> PicoUSD:
    price = model.price
    if price.is_free:
        return 0
    prompt = min(prompt_token_bound(request), model.context_window)
    output = request.max_tokens if request.max_tokens is not None else model.max_output
    choices = request.extra.get("n")
    if isinstance(choices, int) and choices > 1:  # each choice may use max_tokens
        output *= choices
    input_rate = max(price.input, price.cache_write or 0, price.cache_read or 0)
    output_rate = max(price.output, price.reasoning or 0)
    return prompt * input_rate + output * output_rate
