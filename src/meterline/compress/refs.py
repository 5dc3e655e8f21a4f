"""Replacing repeated blocks by ``[ref:block:ID]``: the engine the dedup and code stages share.

Units (see :mod:`meterline.compress.blocks`) are visited in conversation order. The first unit
with a given :func:`~meterline.compress.blocks.block_id` is kept and registered; a later unit whose
text is *exactly* that first unit's text becomes ``[ref:block:ID]``. Ids hash the cleaned code, so
an id stays valid after the code stage cleans the unit it names; equality stays exact, so this
engine never swaps one text for a different one. Entries already in the refs table are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from meterline.compress.blocks import Block, block_id, file_label, units
from meterline.compress.tables import REFS, RefEntry, parse_refs, put_table, render_refs, table_text
from meterline.compress.texts import Site, map_texts
from meterline.types import ChatRequest

__all__ = ["MIN_BLOCK_CHARS", "describe", "replace_repeats"]

MIN_BLOCK_CHARS = 200  # a reference plus its table line costs ~25 tokens


@dataclass(frozen=True, slots=True)
class _First:
    text: str
    message: int
    what: str


def describe(text: str, block: Block) -> str:
    """How the refs table names a block: ``the code block (python)``, ``the <file …> block``."""
    if block.tag:
        head = text[block.start : min(block.body_start, block.start + 160)].strip()
        return f"the {head} block"
    label, _ = file_label(block)
    return f"the code block ({label})" if label != "code" else "the code block"


class _Dedup:
    def __init__(self, min_chars: int, entries: dict[str, RefEntry]) -> None:
        self.min_chars = min_chars
        self.entries = entries
        self.first: dict[str, _First] = {}

    def visit(self, site: Site, text: str) -> str:
        out: list[str] = []
        pos = 0
        for block in units(text):
            if block.end - block.start < self.min_chars:
                continue
            piece = text[block.start : block.end]
            bid = block_id(text, block)
            first = self.first.get(bid)
            if first is None:
                self.first[bid] = _First(piece, site.message, describe(text, block))
                continue
            if first.text != piece:  # same code modulo whitespace, or an id collision
                continue
            out += (text[pos : block.start], f"[ref:block:{bid}]")
            pos = block.end
            if bid not in self.entries:
                self.entries[bid] = RefEntry(bid, first.message, first.what)
        if not out:
            return text
        out.append(text[pos:])
        return "".join(out)


def replace_repeats(request: ChatRequest, min_chars: int) -> ChatRequest:
    """Replace every later exact copy of a unit of ``min_chars`` or more by a reference to it."""
    entries = parse_refs(table_text(request, REFS))
    dedup = _Dedup(min_chars, dict(entries))
    result = map_texts(request, dedup.visit)
    if result is request:
        return request
    ordered = sorted(dedup.entries.values(), key=lambda e: (e.message, e.id))
    return put_table(result, REFS, render_refs(ordered))
