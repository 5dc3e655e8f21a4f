"""The texts of a request the compressor may change, and rebuilding a request around new ones.

Touched: the :class:`TextPart` of every message and the text parts inside tool results. Kept as
they are: images, thinking, tool calls, and the compressor's own tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from meterline.compress.tables import is_table_message, is_table_part
from meterline.types import ChatRequest, ContentPart, Message, Role, TextPart, ToolResultPart

__all__ = [
    "Site",
    "all_texts",
    "iter_texts",
    "map_texts",
    "numbered",
    "request_chars",
    "request_text",
]


@dataclass(frozen=True, slots=True)
class Site:
    """Where a text sits: its message's number (from 1), role, and whether it is a tool result."""

    message: int
    role: Role
    tool_result: bool = False


def numbered(request: ChatRequest) -> Iterator[tuple[int, int, Message]]:
    """``(index, number, message)``: numbers from 1, skipping a system message made for tables."""
    number = 0
    for index, message in enumerate(request.messages):
        if is_table_message(message):
            continue
        number += 1
        yield index, number, message


def _map_text(part: TextPart, site: Site, fn: Callable[[Site, str], str]) -> TextPart:
    text = fn(site, part.text)
    return part if text == part.text else replace(part, text=text)


def _map_part(part: ContentPart, site: Site, fn: Callable[[Site, str], str]) -> ContentPart:
    if isinstance(part, TextPart):
        return part if is_table_part(part) else _map_text(part, site, fn)
    if isinstance(part, ToolResultPart):
        inner = Site(site.message, site.role, tool_result=True)
        content = tuple(
            _map_text(p, inner, fn) if isinstance(p, TextPart) else p for p in part.content
        )
        if all(a is b for a, b in zip(content, part.content, strict=True)):
            return part
        return replace(part, content=content)
    return part


def map_texts(request: ChatRequest, fn: Callable[[Site, str], str]) -> ChatRequest:
    """Apply ``fn`` to every touched text in order; the same request back if nothing changed."""
    messages = list(request.messages)
    changed = False
    for index, number, message in numbered(request):
        site = Site(number, message.role)
        parts = tuple(_map_part(p, site, fn) for p in message.parts)
        if any(a is not b for a, b in zip(parts, message.parts, strict=True)):
            messages[index] = replace(message, parts=parts)
            changed = True
    return replace(request, messages=tuple(messages)) if changed else request


def iter_texts(request: ChatRequest) -> Iterator[tuple[Site, str]]:
    """Every touched text with its site, in the order :func:`map_texts` visits them."""
    for _, number, message in numbered(request):
        for part in message.parts:
            if isinstance(part, TextPart) and not is_table_part(part):
                yield Site(number, message.role), part.text
            elif isinstance(part, ToolResultPart):
                site = Site(number, message.role, tool_result=True)
                yield from ((site, p.text) for p in part.content if isinstance(p, TextPart))


def _texts(parts: tuple[ContentPart, ...]) -> Iterator[str]:
    for part in parts:
        if isinstance(part, TextPart):
            yield part.text
        elif isinstance(part, ToolResultPart):
            yield from (p.text for p in part.content if isinstance(p, TextPart))


def all_texts(request: ChatRequest) -> Iterator[str]:
    """Every text a model reads, tables included: what the token counts cover."""
    for message in request.messages:
        yield from _texts(message.parts)


def request_text(request: ChatRequest) -> str:
    """All of :func:`all_texts` joined: what exact token counts tokenize."""
    return "".join(all_texts(request))


def request_chars(request: ChatRequest) -> int:
    """The length of :func:`request_text`, without building it."""
    return sum(map(len, all_texts(request)))
