"""Upstream stream events built by hand, for tests that control how they are sent."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["chunk_event"]


def chunk_event(delta: dict[str, Any] | None, finish: str | None = None) -> bytes:
    """One OpenAI ``chat.completion.chunk`` SSE event of ``gpt-4o-mini``; ``delta=None`` makes
    the usage-only last chunk (3 prompt tokens, 3 completion tokens)."""
    body: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk",
                            "created": 1, "model": "gpt-4o-mini"}  # fmt: skip
    if delta is None:
        body |= {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 3}}
    else:
        body["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    return b"data: " + json.dumps(body).encode() + b"\n\n"
