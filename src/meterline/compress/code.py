"""Stage 4, code compaction: clean the whitespace inside code, then reference repeats.

Inside fenced code blocks and ``<file>`` sections, blank lines and trailing whitespace go;
indentation, identifiers and line order never change. Blocks that became identical through the
cleaning are replaced by references exactly like the dedup stage does, in the same table; its
references to a block that was cleaned are renamed to the cleaned block's id.
"""

from __future__ import annotations

from meterline.compress.blocks import Block, clean_code, units
from meterline.compress.refs import MIN_BLOCK_CHARS, replace_repeats
from meterline.types import ChatRequest

__all__ = ["compact_code", "compact_code_text", "compact_unit"]


def compact_unit(text: str, block: Block) -> str:
    """The unit's text with its code cleaned (see :func:`clean_code`); prose units unchanged."""
    piece = text[block.start : block.end]
    if not block.is_code:
        return piece
    body = text[block.body_start : block.body_end]
    cleaned = clean_code(body)
    if cleaned == body:
        return piece
    return text[block.start : block.body_start] + cleaned + text[block.body_end : block.end]


def compact_code_text(text: str) -> str:
    """``text`` with the inside of every code block cleaned."""
    out: list[str] = []
    pos = 0
    for block in units(text):
        out += (text[pos : block.start], compact_unit(text, block))
        pos = block.end
    out.append(text[pos:])
    return "".join(out)


def compact_code(request: ChatRequest, min_chars: int = MIN_BLOCK_CHARS) -> ChatRequest:
    """Clean code whitespace, then reference blocks that are now repeats of earlier ones."""
    return replace_repeats(request, min_chars, rewrite=compact_unit)
