"""Stage 3, symbol table: prose phrases repeated across the conversation become ``§1``, ``§2``…

Candidates are whole lines (without indentation, bullet or trailing blanks) and sentences within
lines, of ``min_chars`` or more, outside every block (see :mod:`meterline.compress.blocks`), seen
at least ``min_count`` times. Counting them is one ``Counter`` pass over the prose, so the work is
linear in the text; only the ``max_candidates`` most promising ones are token-counted, and a phrase
becomes a symbol only if it saves tokens after paying for its table line. Phrases are replaced
only where they were counted (whole lines, whole sentences), so a symbol is always followed by
whitespace or the end of a line and ``§12`` cannot be misread as ``§1`` + ``2``. Texts already
containing ``§`` make this stage a no-op; inputs over ``max_chars`` characters are skipped.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

from meterline.compress.blocks import units
from meterline.compress.tables import SYMBOLS, put_table, render_symbols
from meterline.compress.texts import Site, iter_texts, map_texts
from meterline.tokens import count_text
from meterline.types import ChatRequest

__all__ = ["symbolize"]

_EDGES = re.compile(r"^[ \t]*(?:[-*+•][ \t]+|\d{1,3}[.)][ \t]+)?|[ \t]+$", re.MULTILINE)
_LINE = re.compile(r"^([ \t]*(?:[-*+•][ \t]+|\d{1,3}[.)][ \t]+)?)(.*?)([ \t]*)$", re.MULTILINE)
_SENTENCES = re.compile(r"(?<=[.!?])[ \t]+|\n")
_SENTENCE_GAP = re.compile(r"((?<=[.!?])[ \t]+)")
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


def _pick(counts: Counter[str], min_count: int, limit: int, model: str) -> dict[str, int]:
    """The phrases worth a symbol, with the tokens each saves net of its table line."""
    ranked = sorted(
        ((n - 1) * len(p), p) for p, n in counts.items() if n >= min_count and not _UNSAFE.search(p)
    )
    picked: dict[str, int] = {}
    for _, phrase in reversed(ranked[-limit:]):
        tokens = count_text(phrase, model)
        saved = counts[phrase] * (tokens - _SYMBOL_TOKENS) - (tokens + _LINE_OVERHEAD)
        if saved > 0:
            picked[phrase] = saved
    return picked


class _Replacer:
    def __init__(self, lines: dict[str, str], sentences: dict[str, str]) -> None:
        self.lines = lines
        self.sentences = sentences
        self.phrases = [*lines, *sentences]

    def line(self, m: re.Match[str]) -> str:
        content = m.group(2)
        symbol = self.lines.get(content) or self.sentences.get(content)
        if symbol:
            return m.group(1) + symbol + m.group(3)
        if not any(p in content for p in self.sentences):
            return m.group(0)
        pieces = _SENTENCE_GAP.split(content)
        pieces[::2] = [self.sentences.get(s, s) for s in pieces[::2]]
        return m.group(1) + "".join(pieces) + m.group(3)

    def visit(self, _: Site, text: str) -> str:
        if not any(p in text for p in self.phrases):
            return text
        out: list[str] = []
        pos = 0
        for block in units(text):
            out += (_LINE.sub(self.line, text[pos : block.start]), text[block.start : block.end])
            pos = block.end
        out.append(_LINE.sub(self.line, text[pos:]))
        return "".join(out)


def symbolize(
    request: ChatRequest,
    model: str = "",
    *,
    min_chars: int = 20,
    min_count: int = 3,
    max_candidates: int = 24,
    max_chars: int = 400_000,
) -> ChatRequest:
    """Replace repeated prose phrases by ``§n`` symbols (defined in a table) if it saves tokens."""
    model = model or request.model
    texts = [text for _, text in iter_texts(request)]
    if sum(map(len, texts)) > max_chars or any("§" in t for t in texts):
        return request
    prose = [_EDGES.sub("", gap) for text in texts for gap in _gaps(text)]
    line_counts = Counter(
        line for gap in prose for line in gap.split("\n") if len(line) >= min_chars
    )
    lines = _pick(line_counts, min_count, max_candidates, model)
    sentence_counts = Counter(
        s for gap in prose for s in _SENTENCES.split(gap) if len(s) >= min_chars
    )
    for line in lines:  # sentences inside a line that becomes a symbol are not seen again
        for s in _SENTENCES.split(line):
            if s in sentence_counts:
                sentence_counts[s] -= line_counts[line]
        sentence_counts.pop(line, None)
    sentences = _pick(sentence_counts, min_count, max_candidates, model)
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
