"""Extractive summaries of old turns, for the context trimmer.

A summary is ``[summary of earlier turn]`` and the turn's first sentence, then one line per block
the turn held: the block itself when the trimmer must keep it, else a placeholder such as
``[code block: 120 lines of Lib/json/decoder.py]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from meterline.compress.blocks import REF, Block, file_label, units

__all__ = ["MARK", "Occurrence", "occurrences", "placeholder", "summarize"]

MARK = "[summary of earlier turn]"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
_MAX_SENTENCE = 200


@dataclass(frozen=True, slots=True)
class Occurrence:
    """A unit (``block`` set) or a ``[ref:block:id]`` token (``block`` None) in a text."""

    start: int
    end: int
    id: str
    block: Block | None


def occurrences(text: str, block_ids: Callable[[str, Block], str]) -> Iterator[Occurrence]:
    """The units and reference tokens of ``text``, in order; tokens are only found between units."""
    pos = 0
    for block in [*units(text), None]:
        stop = len(text) if block is None else block.start
        for m in REF.finditer(text, pos, stop):
            yield Occurrence(m.start(), m.end(), m.group(1), None)
        if block is not None:
            yield Occurrence(block.start, block.end, block_ids(text, block), block)
            pos = block.end


def placeholder(text: str, block: Block) -> str:
    """``[code block: N lines of FILE]`` for code, ``[context block: N lines]`` for prose."""
    body = text[block.body_start : block.body_end]
    lines = body.count("\n") + (1 if body and not body.endswith("\n") else 0)
    if block.is_code:
        return f"[code block: {lines} lines of {file_label(block)[0]}]"
    return f"[{block.tag} block: {lines} lines]"


def _first_sentence(prose: str) -> str:
    line = next((s.strip() for s in prose.split("\n") if s.strip()), "")
    m = _SENTENCE_END.search(line)
    sentence = line[: m.start()] if m else line
    return sentence if len(sentence) <= _MAX_SENTENCE else sentence[: _MAX_SENTENCE - 1] + "…"


def summarize(text: str, found: list[Occurrence], keep: Callable[[Occurrence], str | None]) -> str:
    """The summary of ``text`` whose occurrences are ``found``.

    ``keep(occurrence)`` returns the line to show for it (the block itself, a kept reference or a
    placeholder), or None to leave it out.
    """
    prose: list[str] = []
    pos = 0
    for occurrence in found:
        prose.append(text[pos : occurrence.start])
        pos = occurrence.end
    prose.append(text[pos:])
    lines = [f"{MARK} {_first_sentence(''.join(prose))}".rstrip()]
    lines += [line for line in map(keep, found) if line is not None]
    return "\n".join(lines)
