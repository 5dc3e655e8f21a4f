"""Undo the lossless stages: resolve ``§n`` symbols and ``[ref:block:…]`` references.

Symbols first (they only ever stand for prose outside blocks), then references: walking the
messages in order, every unit whose id is in the refs table and which sits in the message the
table names is registered, and every reference is replaced by the unit it names (a reference
always points back to a unit seen earlier). The tables are removed, and so is a system message
the compressor created to hold them. Whitespace the normaliser and the code stage removed does
not come back: that is formatting, not content.
"""

from __future__ import annotations

import re

from meterline.compress.blocks import REF, block_id, units
from meterline.compress.tables import (
    REFS,
    SYMBOLS,
    RefEntry,
    drop_tables,
    parse_refs,
    parse_symbols,
    table_text,
)
from meterline.compress.texts import Site, map_texts
from meterline.types import ChatRequest

__all__ = ["expand"]

_SYMBOL = re.compile(r"§(\d+)")


class _Resolver:
    def __init__(self, entries: dict[str, RefEntry]) -> None:
        self.entries = entries
        self.known: dict[str, str] = {}

    def _resolve(self, m: re.Match[str]) -> str:
        return self.known.get(m.group(1), m.group(0))

    def visit(self, site: Site, text: str) -> str:
        out: list[str] = []
        pos = 0
        for block in units(text):
            out.append(REF.sub(self._resolve, text[pos : block.start]))
            piece = text[block.start : block.end]
            out.append(piece)
            pos = block.end
            bid = block_id(text, block)
            entry = self.entries.get(bid)
            if entry is not None and entry.message == site.message and bid not in self.known:
                self.known[bid] = piece
        out.append(REF.sub(self._resolve, text[pos:]))
        return "".join(out)


def expand(request: ChatRequest) -> ChatRequest:
    """``request`` with every symbol and reference resolved and the tables removed."""
    entries = parse_refs(table_text(request, REFS))
    symbols = parse_symbols(table_text(request, SYMBOLS))
    request = drop_tables(request)
    if symbols:

        def resolve(m: re.Match[str]) -> str:
            return symbols.get(int(m.group(1)), m.group(0))

        request = map_texts(request, lambda _, text: _SYMBOL.sub(resolve, text))
    if entries:
        request = map_texts(request, _Resolver(entries).visit)
    return request
