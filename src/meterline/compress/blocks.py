"""Semantic blocks in prompt text: fenced code and ``<file>``/``<context>``/``<document>`` sections.

Every stage sees the same structure, found by :func:`units`:

* a **unit** is a block handled as one piece: a fenced code block, a ``<file ...>`` section, or a
  ``<context>``/``<document>`` section holding only prose;
* a ``<context>``/``<document>`` section that holds other blocks, or references to them, is a
  **container**: not a unit itself, its inner blocks are.

Units never overlap and never contain a ``[ref:block:…]`` token, so a unit found in the compressed
text is byte for byte the unit the compressor saw (modulo :func:`canonical`'s code cleaning).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["REF", "Block", "block_id", "canonical", "clean_code", "file_label", "units"]

REF = re.compile(r"\[ref:block:([0-9a-f]{8})\]")
_TAGS = ("file", "context", "document")
_MARKERS = ("```", "~~~", *(f"<{tag}" for tag in _TAGS))
_TAG_OPEN = re.compile(r"<(file|context|document)(?=[\s>/])([^<>\n]*)>")
_PATH_ATTR = re.compile(r"""\b(?:path|name|file|filename)\s*=\s*["']([^"']+)["']""")
_PATH_LIKE = re.compile(r"""(?:^|[\s:="'])([\w@+~-]*(?:[./\\][\w@+~-]+)*\.\w+)\b""")
_TRAILING_WS = re.compile(r"[ \t\r\f\v]+$", re.MULTILINE)
_BLANKS = (" ", "\t", "\r", "\f", "\v")
_TRAILERS = tuple(f"{blank}\n" for blank in _BLANKS)


@dataclass(frozen=True, slots=True)
class Block:
    """A block of ``text[start:end]``; ``text[body_start:body_end]`` is its inside.

    ``tag`` is ``"file"``, ``"context"`` or ``"document"`` for a tagged section and ``""`` for a
    fence; ``info`` is the fence's info string or the tag's attributes.
    """

    start: int
    end: int
    body_start: int
    body_end: int
    tag: str
    info: str

    @property
    def kind(self) -> Literal["fence", "tag"]:
        return "tag" if self.tag else "fence"

    @property
    def is_code(self) -> bool:
        """Fenced code and ``<file>`` sections: whitespace inside is code, not prose."""
        return self.tag in ("", "file")


def _line_start(text: str, at: int) -> int:
    return text.rfind("\n", 0, at) + 1


def _line_end(text: str, at: int, end: int) -> int:
    stop = text.find("\n", at, end)
    return end if stop < 0 else stop


def _only_blanks(text: str, start: int, stop: int) -> bool:
    return not text[start:stop].strip(" \t")


def _closing(text: str, fence: str, start: int, end: int) -> tuple[int, int] | None:
    """``(line start, line end)`` of the first line closing ``fence`` in ``text[start:end]``."""
    pos = start
    while True:
        at = text.find(fence, pos, end)
        if at < 0:
            return None
        stop = _line_end(text, at, end)
        line = _line_start(text, at)
        if line >= start and _only_blanks(text, line, at):
            rest = text[at:stop].rstrip(" \t")
            if rest.strip(fence[0]) == "":
                return line, stop
        pos = stop + 1


def _fence(text: str, at: int, start: int, end: int) -> Block | None:
    line = _line_start(text, at)
    if line < start or not _only_blanks(text, line, at):
        return None
    char = text[at]
    run = at
    while run < end and text[run] == char:
        run += 1
    head_end = _line_end(text, run, end)
    info = text[run:head_end]
    if char == "`" and "`" in info:
        return None  # ```inline``` code, not a fence
    body_start = min(head_end + 1, end)
    close = _closing(text, char * (run - at), body_start, end)
    if close is None:  # an unclosed fence runs to the end, as in CommonMark
        return Block(line, end, body_start, end, "", info.strip())
    return Block(line, close[1], body_start, close[0], "", info.strip())


def _section(text: str, at: int, end: int) -> Block | None:
    m = _TAG_OPEN.match(text, at, end)
    if m is None or m.group(2).rstrip().endswith("/"):
        return None  # not one of our tags, or self-closing
    tag, attrs = m.group(1), m.group(2)
    opener, closer = f"<{tag}", f"</{tag}>"
    depth, pos = 1, m.end()
    while True:
        close = text.find(closer, pos, end)
        if close < 0:
            return None
        inner = text.find(opener, pos, close)
        while inner >= 0:
            nested = _TAG_OPEN.match(text, inner, close)
            if nested and nested.group(1) == tag and not nested.group(2).rstrip().endswith("/"):
                depth += 1
            inner = text.find(opener, inner + 1, close)
        depth -= 1
        pos = close + len(closer)
        if depth == 0:
            break
    body_start = m.end() + 1 if text.startswith("\n", m.end()) else m.end()
    return Block(at, pos, body_start, close, tag, attrs.strip())


def _scan(text: str, start: int, end: int) -> list[Block]:
    """Top-level blocks of ``text[start:end]``, in order."""
    found: list[Block] = []
    ahead = [text.find(marker, start, end) for marker in _MARKERS]
    while True:
        live = [at for at in ahead if at >= 0]
        if not live:
            return found
        at = min(live)
        kind = ahead.index(at)
        block = _fence(text, at, start, end) if kind < 2 else _section(text, at, end)
        pos = at + 1 if block is None else block.end
        if block is not None:
            found.append(block)
        ahead = [
            text.find(marker, pos, end) if 0 <= seen < pos else seen
            for marker, seen in zip(_MARKERS, ahead, strict=True)
        ]


def _collect(text: str, start: int, end: int, out: list[Block]) -> None:
    for block in _scan(text, start, end):
        if block.tag in ("context", "document") and (
            _scan(text, block.body_start, block.body_end)
            or text.find("[ref:block:", block.body_start, block.body_end) >= 0
        ):
            _collect(text, block.body_start, block.body_end, out)
        else:
            out.append(block)


def units(text: str) -> list[Block]:
    """The units of ``text`` (see the module docstring), in order."""
    out: list[Block] = []
    _collect(text, 0, len(text), out)
    return out


def clean_code(body: str) -> str:
    """Drop blank lines and trailing whitespace; indentation and line order stay as they are.

    Written with ``str`` methods (a regex only when a line has trailing whitespace): it runs over
    every code block of every request, and is idempotent, which block ids rely on.
    """
    if body.endswith(_BLANKS) or any(trailer in body for trailer in _TRAILERS):
        body = _TRAILING_WS.sub("", body)
    while "\n\n" in body:
        body = body.replace("\n\n", "\n")
    return body[1:] if body.startswith("\n") else body


def canonical(text: str, block: Block) -> str:
    """``block``'s text with its code cleaned, the form its id is computed from.

    Hashing the cleaned form keeps an id valid after the code stage cleans the block it names.
    """
    piece = text[block.start : block.end]
    if not block.is_code:
        return piece
    body = text[block.body_start : block.body_end]
    cleaned = clean_code(body)
    if cleaned == body:
        return piece
    return text[block.start : block.body_start] + cleaned + text[block.body_end : block.end]


def block_id(text: str, block: Block) -> str:
    """The first 8 hex digits of the SHA-256 of the block's :func:`canonical` text."""
    return hashlib.sha256(canonical(text, block).encode()).hexdigest()[:8]


def file_label(block: Block) -> tuple[str, bool]:
    """What the block shows: ``(path, True)`` for a file, else ``(language or kind, False)``."""
    if block.tag == "file":
        m = _PATH_ATTR.search(block.info)
        return (m.group(1), True) if m else ("file", False)
    if block.tag:
        return block.tag, False
    m = _PATH_LIKE.search(block.info)
    if m:
        return m.group(1), True
    words = block.info.split()
    return (words[0], False) if words else ("code", False)
