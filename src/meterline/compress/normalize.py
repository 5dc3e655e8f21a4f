"""Stage 1, whitespace normalisation: fewer tokens, never different words or order.

Outside code (fenced blocks and ``<file>`` sections, left byte for byte as they are):

* trailing spaces and tabs on a line go;
* runs of three or more newlines become two (one blank line);
* runs of two or more spaces/tabs between words become one space (indentation stays);
* ``*``, ``+`` and ``•`` bullets at the start of a line become ``-`` (not ``* * *`` rules, and not
  ``+`` when the text looks like a diff).

Tool results are machine output (aligned tables, logs, unfenced files), so only the first two
rules apply to them.
"""

from __future__ import annotations

import re

from meterline.compress.blocks import units
from meterline.compress.texts import Site, map_texts
from meterline.types import ChatRequest

__all__ = ["normalize", "normalize_text"]

_TRAILING = re.compile(r"[ \t]+(?=\n)")
_TRAILING_END = re.compile(r"[ \t]+\Z")
_NEWLINES = re.compile(r"\n{3,}")
_RUNS = re.compile(r"(?<=\S)[ \t]{2,}(?=\S)")
_BULLET = re.compile(r"^([ \t]*)([*+•])(?=[ \t])(.*)$", re.MULTILINE)
_BULLET_NOT_PLUS = re.compile(r"^([ \t]*)([*•])(?=[ \t])(.*)$", re.MULTILINE)
_RULE = re.compile(r"[*+•]?(?:[ \t]*[*+•-]){2,}[ \t]*")
_DIFF = re.compile(r"^(?:@@ |diff --git |\+\+\+ |--- a/)", re.MULTILINE)


def _bullet(m: re.Match[str]) -> str:
    if _RULE.fullmatch(m.group(2) + m.group(3)):
        return m.group(0)
    return f"{m.group(1)}-{m.group(3)}"


def _prose(segment: str, *, last: bool, full: bool, diff: bool) -> str:
    segment = _TRAILING.sub("", segment)
    if last:
        segment = _TRAILING_END.sub("", segment)
    segment = _NEWLINES.sub("\n\n", segment)
    if not full:
        return segment
    segment = _RUNS.sub(" ", segment)
    return (_BULLET_NOT_PLUS if diff else _BULLET).sub(_bullet, segment)


def normalize_text(text: str, *, full: bool = True) -> str:
    """Normalise the prose of ``text``; ``full=False`` keeps runs of spaces and bullets."""
    diff = full and _DIFF.search(text) is not None
    out: list[str] = []
    pos = 0
    for block in units(text):
        if block.is_code:
            out.append(_prose(text[pos : block.start], last=False, full=full, diff=diff))
            out.append(text[block.start : block.end])
            pos = block.end
    out.append(_prose(text[pos:], last=True, full=full, diff=diff))
    return "".join(out)


def _visit(site: Site, text: str) -> str:
    return normalize_text(text, full=not site.tool_result)


def normalize(request: ChatRequest) -> ChatRequest:
    """Normalise whitespace and bullets in every touched text of ``request``."""
    return map_texts(request, _visit)
