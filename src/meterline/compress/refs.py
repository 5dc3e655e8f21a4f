"""Replacing repeated blocks by ``[ref:block:ID]``: the engine the dedup and code stages share.

Units (see :mod:`meterline.compress.blocks`) are visited in conversation order, optionally
rewritten first (the code stage cleans them); a unit's id is the SHA-256 of its exact text. The
first unit with an id is kept; every later one of at least ``min_chars`` characters becomes
``[ref:block:ID]``, and the refs table records where each id was first shown.

References made earlier (by the dedup stage) to a unit the rewrite changed are renamed to the new
id as the walk meets them (a reference always comes after the unit it names), so the dedup and
code stages share one table and one id scheme.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from meterline.compress.blocks import REF, Block, file_label, piece_id, units
from meterline.compress.tables import REFS, RefEntry, parse_refs, put_table, render_refs, table_text
from meterline.compress.texts import Site, map_texts
from meterline.types import ChatRequest

__all__ = ["MIN_BLOCK_CHARS", "Rewrite", "describe", "replace_repeats"]

MIN_BLOCK_CHARS = 200  # a reference plus its table line costs ~25 tokens
Rewrite = Callable[[str, Block], str]  # (text, unit) -> the unit's new text


@dataclass(frozen=True, slots=True)
class _First:
    digest: str
    message: int
    what: str


def describe(text: str, block: Block) -> str:
    """How the refs table names a block: ``the code block (python)``, ``the <file …> block``."""
    if block.tag:
        head = text[block.start : min(block.body_start, block.start + 160)].strip()
        return f"the {head} block"
    label, _ = file_label(block)
    return f"the code block ({label})" if label != "code" else "the code block"


class _Walk:
    def __init__(self, min_chars: int, rewrite: Rewrite | None, renaming: bool) -> None:
        self.min_chars = min_chars
        self.rewrite = rewrite
        self.renaming = renaming  # only when earlier references exist
        self.first: dict[str, _First] = {}  # short id -> first unit with it
        self.used: set[str] = set()
        self.renamed: dict[str, str] = {}

    def _rename(self, m: re.Match[str]) -> str:
        return f"[ref:block:{self.renamed.get(m.group(1), m.group(1))}]"

    def _gap(self, gap: str) -> str:
        if self.renamed and "[ref:block:" in gap:
            return REF.sub(self._rename, gap)
        return gap

    def _unit(self, site: Site, text: str, block: Block) -> str:
        piece = text[block.start : block.end]
        new = piece if self.rewrite is None else self.rewrite(text, block)
        digest = hashlib.sha256(new.encode()).hexdigest()
        bid = digest[:8]
        if self.renaming and new != piece:
            self.renamed[piece_id(piece)] = bid
        first = self.first.get(bid)
        if first is None:
            self.first[bid] = _First(digest, site.message, describe(text, block))
        elif first.digest == digest and len(new) >= self.min_chars:
            self.used.add(bid)
            return f"[ref:block:{bid}]"
        return new

    def visit(self, site: Site, text: str) -> str:
        out: list[str] = []
        pos = 0
        for block in units(text):
            out += (self._gap(text[pos : block.start]), self._unit(site, text, block))
            pos = block.end
        out.append(self._gap(text[pos:]))
        return "".join(out)

    def table(self, entries: dict[str, RefEntry]) -> str:
        merged: dict[str, RefEntry] = {}
        for entry in entries.values():  # earlier references, renamed
            bid = self.renamed.get(entry.id, entry.id)
            if bid not in merged or entry.message < merged[bid].message:
                merged[bid] = RefEntry(bid, entry.message, entry.what)
        for bid in self.used | merged.keys():
            first = self.first.get(bid)
            if first is not None:
                merged[bid] = RefEntry(bid, first.message, first.what)
        return render_refs(sorted(merged.values(), key=lambda e: (e.message, e.id)))


def replace_repeats(
    request: ChatRequest, min_chars: int = MIN_BLOCK_CHARS, rewrite: Rewrite | None = None
) -> ChatRequest:
    """Rewrite units (if asked), then replace later copies of a unit by a reference to it."""
    entries = parse_refs(table_text(request, REFS))
    walk = _Walk(min_chars, rewrite, renaming=bool(entries))
    result = map_texts(request, walk.visit)
    if result is request or not (walk.used or entries):
        return result
    return put_table(result, REFS, walk.table(entries))
