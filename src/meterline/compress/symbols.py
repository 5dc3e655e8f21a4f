"""Stage 3, symbol table: prose phrases repeated across the conversation become ``§1``, ``§2``…

Candidates are whole lines (stripped) and sentences within lines, of ``min_chars`` or more,
outside every block (see :mod:`meterline.compress.blocks`), seen at least ``min_count`` times.
Finding them is a few ``str`` passes and a ``Counter`` over the prose, linear in the text; only the
``max_candidates`` most promising are token-counted, and a phrase becomes a symbol only if it
saves tokens after paying for its table line (and all of them for the table's header).

Phrases are replaced only where they were counted (whole lines, whole sentences), so a symbol is
always followed by a blank or the end of a line, and ``§12`` cannot be misread as ``§1`` + ``2``.
Texts already containing ``§`` make this stage a no-op; so do inputs over ``max_chars``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from functools import lru_cache, partial

from meterline.compress.blocks import units
from meterline.compress.tables import SYMBOLS, put_table, render_symbols
from meterline.compress.texts import Site, iter_texts, map_texts
from meterline.tokens import count_text
from meterline.types import ChatRequest

__all__ = ["symbolize"]

_SENTENCE_BREAK = re.compile(r"(?<=[.!?]) ")
_STOPS = (". ", "? ", "! ")
_UNSAFE = re.compile(r"\[ref:block:|</?(?:file|context|document)\b|^(?:```|~~~)")
_SYMBOL_TOKENS = 2  # "§" + digits; measured for cl100k_base and o200k_base
_LINE_OVERHEAD = 6  # '§n = "' + '"\n'


def _gaps(text: str) -> Iterator[str]:
    """The prose of ``text``: everything outside its blocks."""
    pos = 0
    for block in units(text):
        yield text[pos : block.start]
        pos = block.end
    yield text[pos:]


def _sentences(text: str) -> list[str]:
    """``text`` cut after every ``. ``, ``? `` and ``! ``, and at every newline."""
    return text.replace(". ", ".\n").replace("? ", "?\n").replace("! ", "!\n").split("\n")


def _pick(
    counts: Counter[str], min_count: int, min_chars: int, limit: int, tokens: Callable[[str], int]
) -> dict[str, int]:
    """The phrases worth a symbol, with the tokens each saves net of its table line."""
    ranked = []
    for phrase, n in counts.most_common():
        if n < min_count:
            break
        if len(phrase) >= min_chars and not _UNSAFE.search(phrase):
            ranked.append(((n - 1) * len(phrase), phrase))
    picked: dict[str, int] = {}
    for _, phrase in sorted(ranked, reverse=True)[:limit]:
        size = tokens(phrase)
        saved = counts[phrase] * (size - _SYMBOL_TOKENS) - (size + _LINE_OVERHEAD)
        if saved > 0:
            picked[phrase] = saved
    return picked


class _Replacer:
    """Puts symbols where their phrases were counted: whole lines, whole sentences.

    Lookups are per line in dicts, never a scan per phrase, so the cost is linear in the prose.
    """

    def __init__(self, lines: dict[str, str], sentences: dict[str, str]) -> None:
        self.lines = lines
        self.sentences = sentences
        self.shortest = min(map(len, [*lines, *sentences]))

    def _sentence(self, piece: str) -> str:
        core = piece.strip()
        symbol = self.sentences.get(core)
        return piece.replace(core, symbol, 1) if symbol else piece

    def _line(self, line: str) -> str:
        content = line.strip()
        if len(content) < self.shortest:
            return line
        symbol = self.lines.get(content) or self.sentences.get(content)
        if symbol:
            return line.replace(content, symbol, 1)
        if self.sentences and any(stop in content for stop in _STOPS):
            return " ".join(map(self._sentence, _SENTENCE_BREAK.split(line)))
        return line

    def _gap(self, gap: str) -> str:
        if len(gap) < self.shortest:
            return gap
        return "\n".join(map(self._line, gap.split("\n")))

    def visit(self, _: Site, text: str) -> str:
        out: list[str] = []
        pos = 0
        for block in units(text):
            out += (self._gap(text[pos : block.start]), text[block.start : block.end])
            pos = block.end
        out.append(self._gap(text[pos:]))
        return "".join(out)


def symbolize(
    request: ChatRequest,
    model: str = "",
    *,
    min_chars: int = 20,
    min_count: int = 3,
    max_candidates: int = 12,
    max_chars: int = 400_000,
) -> ChatRequest:
    """Replace repeated prose phrases by ``§n`` symbols (defined in a table) if it saves tokens."""
    model = model or request.model
    texts = [text for _, text in iter_texts(request)]
    if sum(map(len, texts)) > max_chars or any("§" in t for t in texts):
        return request
    prose = "\n".join(gap for text in texts for gap in _gaps(text))
    line_counts = Counter(map(str.strip, prose.split("\n")))
    tokens = lru_cache(maxsize=None)(partial(count_text, model=model))
    lines = _pick(line_counts, min_count, min_chars, max_candidates, tokens)
    sentence_counts = Counter(map(str.strip, _sentences(prose)))
    for line in lines:  # sentences inside a line that becomes a symbol are not seen again
        for sentence in map(str.strip, _sentences(line)):
            sentence_counts[sentence] -= line_counts[line]
        sentence_counts.pop(line, None)
    sentences = _pick(sentence_counts, min_count, min_chars, max_candidates, tokens)
    saved = sum(lines.values()) + sum(sentences.values())
    if saved <= count_text(render_symbols({}), model):
        return request
    numbers = {p: f"§{n}" for n, p in enumerate([*lines, *sentences], start=1)}
    replacer = _Replacer({p: numbers[p] for p in lines}, {p: numbers[p] for p in sentences})
    result = map_texts(request, replacer.visit)
    if result is request:
        return request
    table = {int(symbol[1:]): phrase for phrase, symbol in numbers.items()}
    return put_table(result, SYMBOLS, render_symbols(table))
