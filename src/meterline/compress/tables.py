"""The expansion tables the compressor puts at the top of the system prompt.

Each table is its own :class:`TextPart` at the start of the first system message (a system
message is created when there is none), delimited by a ``<meterline-…>`` tag::

    <meterline-refs>
    Each [ref:block:ID] stands for an exact copy of the block listed here, shown in full earlier
    in the conversation (blank lines inside code may be dropped).
    [ref:block:1a2b3c4d] = the code block (python) first shown in message 3
    </meterline-refs>

    <meterline-symbols>
    Each §n stands for the quoted text:
    §1 = "Answer in at most three sentences and cite the section you used."
    </meterline-symbols>

Messages are numbered from 1 in the order the client sent them (a system message created for the
tables is not counted).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from meterline.types import ChatRequest, ContentPart, Message, TextPart

__all__ = [
    "REFS",
    "SYMBOLS",
    "RefEntry",
    "drop_tables",
    "is_table_message",
    "is_table_part",
    "parse_refs",
    "parse_symbols",
    "put_table",
    "remove_table",
    "render_refs",
    "render_symbols",
    "table_text",
]

REFS = "meterline-refs"
SYMBOLS = "meterline-symbols"
_REFS_NOTE = (
    "Each [ref:block:ID] stands for an exact copy of the block listed here, shown in full earlier "
    "in the conversation (blank lines inside code may be dropped)."
)
_SYMBOLS_NOTE = "Each §n stands for the quoted text:"
_REF_LINE = re.compile(r"^\[ref:block:([0-9a-f]{8})\] = (.*) first shown in message (\d+)$", re.M)
_SYMBOL_LINE = re.compile(r'^§(\d+) = (".*")$', re.M)


@dataclass(frozen=True, slots=True)
class RefEntry:
    """``[ref:block:id]`` stands for ``what``, first shown in message ``message`` (from 1)."""

    id: str
    message: int
    what: str


def render_refs(entries: Iterable[RefEntry]) -> str:
    """The refs table listing ``entries``, as the text part that holds it."""
    lines = [f"[ref:block:{e.id}] = {e.what} first shown in message {e.message}" for e in entries]
    return f"<{REFS}>\n{_REFS_NOTE}\n" + "\n".join(lines) + f"\n</{REFS}>\n\n"


def parse_refs(text: str | None) -> dict[str, RefEntry]:
    """The entries of a refs table by id (none for ``None``)."""
    if not text:
        return {}
    return {
        m.group(1): RefEntry(m.group(1), int(m.group(3)), m.group(2))
        for m in _REF_LINE.finditer(text)
    }


def render_symbols(phrases: Mapping[int, str]) -> str:
    """The table for ``{n: phrase}``, each phrase quoted as a JSON string."""
    lines = [f"§{n} = {json.dumps(p, ensure_ascii=False)}" for n, p in sorted(phrases.items())]
    return f"<{SYMBOLS}>\n{_SYMBOLS_NOTE}\n" + "\n".join(lines) + f"\n</{SYMBOLS}>\n\n"


def parse_symbols(text: str | None) -> dict[int, str]:
    """``{n: phrase}`` from a symbols table (none for ``None``)."""
    if not text:
        return {}
    return {int(m.group(1)): str(json.loads(m.group(2))) for m in _SYMBOL_LINE.finditer(text)}


def is_table_part(part: ContentPart) -> bool:
    """Whether ``part`` is one of the compressor's tables."""
    return isinstance(part, TextPart) and part.text.startswith((f"<{REFS}>", f"<{SYMBOLS}>"))


def is_table_message(message: Message) -> bool:
    """A system message holding nothing but tables: one the compressor created."""
    return (
        message.role == "system"
        and bool(message.parts)
        and all(is_table_part(p) for p in message.parts)
    )


def _system_index(request: ChatRequest) -> int | None:
    return next((i for i, m in enumerate(request.messages) if m.role == "system"), None)


def table_text(request: ChatRequest, name: str) -> str | None:
    """The text of table ``name`` (:data:`REFS` or :data:`SYMBOLS`), if the request has one."""
    index = _system_index(request)
    if index is None:
        return None
    for part in request.messages[index].parts:
        if isinstance(part, TextPart) and part.text.startswith(f"<{name}>"):
            return part.text
    return None


def put_table(request: ChatRequest, name: str, text: str) -> ChatRequest:
    """Replace table ``name`` or add it at the top of the system prompt."""
    messages = list(request.messages)
    index = _system_index(request)
    if index is None:
        messages.insert(0, Message("system", (TextPart(text),)))
        return replace(request, messages=tuple(messages))
    parts = list(messages[index].parts)
    at = next(
        (
            i
            for i, p in enumerate(parts)
            if isinstance(p, TextPart) and p.text.startswith(f"<{name}>")
        ),
        None,
    )
    if at is None:
        parts.insert(0, TextPart(text))
    else:
        parts[at] = TextPart(text)
    messages[index] = replace(messages[index], parts=tuple(parts))
    return replace(request, messages=tuple(messages))


def drop_tables(request: ChatRequest) -> ChatRequest:
    """The request without its tables (and without the system message made to hold them)."""
    index = _system_index(request)
    if index is None or not any(is_table_part(p) for p in request.messages[index].parts):
        return request
    messages = list(request.messages)
    if is_table_message(messages[index]):
        del messages[index]
    else:
        parts = tuple(p for p in messages[index].parts if not is_table_part(p))
        messages[index] = replace(messages[index], parts=parts)
    return replace(request, messages=tuple(messages))


def remove_table(request: ChatRequest, name: str) -> ChatRequest:
    """The request without table ``name`` (and without a system message left empty by it)."""
    index = _system_index(request)
    if index is None or table_text(request, name) is None:
        return request
    messages = list(request.messages)
    parts = tuple(
        p
        for p in messages[index].parts
        if not (isinstance(p, TextPart) and p.text.startswith(f"<{name}>"))
    )
    if parts:
        messages[index] = replace(messages[index], parts=parts)
    else:
        del messages[index]
    return replace(request, messages=tuple(messages))
