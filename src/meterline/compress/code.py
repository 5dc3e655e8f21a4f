"""Stage 4, code compaction: clean the whitespace inside code, then reference repeats.

Inside fenced code blocks and ``<file>`` sections, blank lines and trailing whitespace go;
indentation, identifiers and line order never change. Blocks that became identical through the
cleaning are then replaced by references exactly like the dedup stage does (same ids, same table).
"""

from __future__ import annotations

from meterline.compress.blocks import clean_code, units
from meterline.compress.refs import MIN_BLOCK_CHARS, replace_repeats
from meterline.compress.texts import Site, map_texts
from meterline.types import ChatRequest

__all__ = ["compact_code", "compact_code_text"]


def compact_code_text(text: str) -> str:
    """``text`` with the inside of every code block cleaned (see :func:`clean_code`)."""
    out: list[str] = []
    pos = 0
    for block in units(text):
        if not block.is_code:
            continue
        body = text[block.body_start : block.body_end]
        cleaned = clean_code(body)
        if cleaned != body:
            out += (text[pos : block.body_start], cleaned)
            pos = block.body_end
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def _visit(_: Site, text: str) -> str:
    return compact_code_text(text)


def compact_code(request: ChatRequest, min_chars: int = MIN_BLOCK_CHARS) -> ChatRequest:
    """Clean code whitespace, then reference blocks that are now repeats of earlier ones."""
    return replace_repeats(map_texts(request, _visit), min_chars)
