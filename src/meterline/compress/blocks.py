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
from functools import lru_cache
from typing import Literal

__all__ = ["REF", "Block", "block_id", "canonical", "clean_code", "file_label", "units"]

REF = re.compile(r"\[ref:block:([0-9a-f]{8})\]")
_OPEN = re.compile(
    r"^[ \t]*(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)$"
    r"|<(?P<tag>file|context|document)\b(?P<attrs>[^<>\n]*)>",
    re.MULTILINE,
)
_PATH_ATTR = re.compile(r"""\b(?:path|name|file|filename)\s*=\s*["']([^"']+)["']""")
_PATH_LIKE = re.compile(r"""(?:^|[\s:="'])([\w@+~-]*(?:[./\\][\w@+~-]+)*\.\w+)\b""")


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


@lru_cache(maxsize=32)
def _closing_fence(char: str, length: int) -> re.Pattern[str]:
    return re.compile(rf"^[ \t]*{re.escape(char)}{{{length},}}[ \t]*$", re.MULTILINE)


@lru_cache(maxsize=8)
def _tag_edges(tag: str) -> re.Pattern[str]:
    return re.compile(rf"<(?P<close>/)?{tag}\b(?P<attrs>[^<>\n]*)>")


def _fence(text: str, m: re.Match[str], end: int) -> Block | None:
    fence, info = m.group("fence"), m.group("info")
    if fence[0] == "`" and "`" in info:
        return None  # ```inline``` code, not a fence
    head_end = m.end()
    body_start = min(head_end + 1, end)
    close = _closing_fence(fence[0], len(fence)).search(text, body_start, end)
    if close is None:  # an unclosed fence runs to the end, as in CommonMark
        return Block(m.start(), end, body_start, end, "", info.strip())
    return Block(m.start(), close.end(), body_start, close.start(), "", info.strip())


def _section(text: str, m: re.Match[str], end: int) -> Block | None:
    tag, attrs = m.group("tag"), m.group("attrs")
    if attrs.rstrip().endswith("/"):
        return None  # self-closing
    depth, pos = 1, m.end()
    edges = _tag_edges(tag)
    while True:
        edge = edges.search(text, pos, end)
        if edge is None:
            return None
        if edge.group("close"):
            depth -= 1
            if depth == 0:
                break
        elif not edge.group("attrs").rstrip().endswith("/"):
            depth += 1
        pos = edge.end()
    body_start = m.end() + 1 if text.startswith("\n", m.end()) else m.end()
    return Block(m.start(), edge.end(), body_start, edge.start(), tag, attrs.strip())


def _scan(text: str, start: int, end: int) -> list[Block]:
    """Top-level blocks of ``text[start:end]``, in order."""
    found: list[Block] = []
    pos = start
    while True:
        m = _OPEN.search(text, pos, end)
        if m is None:
            return found
        block = _fence(text, m, end) if m.group("fence") else _section(text, m, end)
        if block is None:
            pos = m.end()
            continue
        found.append(block)
        pos = max(block.end, m.end())


def _collect(text: str, start: int, end: int, out: list[Block]) -> None:
    for block in _scan(text, start, end):
        if block.tag in ("context", "document") and (
            _scan(text, block.body_start, block.body_end)
            or REF.search(text, block.body_start, block.body_end)
        ):
            _collect(text, block.body_start, block.body_end, out)
        else:
            out.append(block)


def units(text: str) -> list[Block]:
    """The units of ``text`` (see the module docstring), in order."""
    if "```" not in text and "~~~" not in text and "<" not in text:
        return []
    out: list[Block] = []
    _collect(text, 0, len(text), out)
    return out


def clean_code(body: str) -> str:
    """Drop blank lines and trailing whitespace; indentation and line order stay as they are."""
    if not body:
        return body
    newline = body.endswith("\n")
    kept = [line.rstrip() for line in body.split("\n") if line.strip()]
    return "\n".join(kept) + ("\n" if newline and kept else "")


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
