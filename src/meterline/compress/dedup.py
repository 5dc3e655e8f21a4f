"""Stage 2, structural de-duplication: later exact copies of a block become references.

Blocks are fenced code and ``<file>``/``<context>``/``<document>`` sections (see
:mod:`meterline.compress.blocks`). The first occurrence stays where it is; every later identical
one of at least ``min_chars`` characters becomes ``[ref:block:<8 hex>]``, and the refs table at the
top of the system prompt says where each id was first shown. Lossless: see
:func:`meterline.compress.expand.expand`.
"""

from __future__ import annotations

from meterline.compress.refs import MIN_BLOCK_CHARS, replace_repeats
from meterline.types import ChatRequest

__all__ = ["dedup"]


def dedup(request: ChatRequest, min_chars: int = MIN_BLOCK_CHARS) -> ChatRequest:
    """Replace repeated blocks of ``min_chars`` or more by references to their first occurrence."""
    return replace_repeats(request, min_chars)
