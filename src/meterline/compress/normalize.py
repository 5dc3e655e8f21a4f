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
from functools import lru_cache

from meterline.compress.blocks import units
from meterline.compress.texts import Site, map_texts
from meterline.types import ChatRequest

__all__ = ["forget_segments", "normalize", "normalize_text"]

_TRAILING = re.compile(r"[ \t]+(?=\n)")
_NEWLINES = re.compile(r"\n{3,}")
_RUNS = re.compile(r"(?<=\S)[ \t]{2,}(?=\S)")
_RULE = re.compile(r"[*+•](?:[ \t]*[*+•-]){2,}[ \t]*")
_DIFF_LINES = ("@@ ", "diff --git ", "+++ ")
_REMEMBER_FROM = 1024  # characters; shorter segments cost less to normalise than to look up


def _looks_like_diff(text: str) -> bool:
    return text.startswith(_DIFF_LINES) or any(f"\n{line}" in text for line in _DIFF_LINES)


def _tidy_lines(segment: str) -> str:
    """Collapse runs of blanks between words and turn bullets into ``-``, line by line."""
    bullets = "*•" if "+ " in segment and _looks_like_diff(segment) else "*+•"
    lines = segment.split("\n")
    for i, line in enumerate(lines):
        body = line.lstrip(" \t")
        tidy = _RUNS.sub(" ", body) if "  " in body or "\t" in body else body
        if body[:1] in bullets and body[1:2] in (" ", "\t") and not _RULE.fullmatch(body):
            tidy = "-" + tidy[1:]
        if tidy is not body:
            lines[i] = line[: len(line) - len(body)] + tidy
    return "\n".join(lines)


def _prose(segment: str, *, last: bool, full: bool) -> str:
    """Normalise prose; long segments are remembered (histories and pasted documents repeat)."""
    if len(segment) < _REMEMBER_FROM:
        return _normalise(segment, last, full)
    return _remembered(segment, last, full)


def _normalise(segment: str, last: bool, full: bool) -> str:
    """Normalise prose; ``full=False`` keeps runs of blanks and bullets."""
    if " \n" in segment or "\t\n" in segment:
        segment = _TRAILING.sub("", segment)
    if last:
        segment = segment.rstrip(" \t")
    if "\n\n\n" in segment:
        segment = _NEWLINES.sub("\n\n", segment)
    if full and any(mark in segment for mark in ("  ", "\t", "* ", "+ ", "•")):
        segment = _tidy_lines(segment)
    return segment


_remembered = lru_cache(maxsize=256)(_normalise)


def forget_segments() -> None:
    """Empty the memo of normalised long segments."""
    _remembered.cache_clear()


def normalize_text(text: str, *, full: bool = True) -> str:
    """Normalise the prose of ``text``; ``full=False`` keeps runs of blanks and bullets."""
    out: list[str] = []
    pos = 0
    for block in units(text):
        out.append(_prose(text[pos : block.start], last=False, full=full))
        piece = text[block.start : block.end]
        # Prose sections on their own: a document pasted into every turn is normalised once.
        out.append(piece if block.is_code else _prose(piece, last=False, full=full))
        pos = block.end
    out.append(_prose(text[pos:], last=True, full=full))
    return "".join(out)


def _visit(site: Site, text: str) -> str:
    return normalize_text(text, full=not site.tool_result)


def normalize(request: ChatRequest) -> ChatRequest:
    """Normalise whitespace and bullets in every touched text of ``request``."""
    return map_texts(request, _visit)
