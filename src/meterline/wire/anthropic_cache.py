"""Automatic Anthropic prompt-cache breakpoints on long, stable prefixes. Pure.

When a request carries no ``cache_control`` of its own, a breakpoint goes on the last tool
definition and on the last system block once they are long enough to be worth caching (the
API caches prefixes of 1,024+ tokens; ``min_chars`` approximates that). Tools and system
prompts are the parts that repeat unchanged from one request to the next; messages are not
touched. Anthropic allows four breakpoints; this adds at most two.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["add_cache_breakpoints"]

_EPHEMERAL = {"type": "ephemeral"}


def _has_cache_control(body: dict[str, Any]) -> bool:
    return b'"cache_control"' in orjson.dumps(body)


def add_cache_breakpoints(body: dict[str, Any], min_chars: int = 4096) -> dict[str, Any]:
    """``body`` with breakpoints added, or unchanged when it already has some."""
    if _has_cache_control(body):
        return body
    out = dict(body)
    tools = out.get("tools")
    if isinstance(tools, list) and tools and len(orjson.dumps(tools)) >= min_chars:
        out["tools"] = [*tools[:-1], {**tools[-1], "cache_control": _EPHEMERAL}]
    system = out.get("system")
    if isinstance(system, str) and len(system) >= min_chars:
        out["system"] = [{"type": "text", "text": system, "cache_control": _EPHEMERAL}]
    elif isinstance(system, list) and system:
        size = sum(len(str(b.get("text", ""))) for b in system if isinstance(b, dict))
        if size >= min_chars:
            out["system"] = [*system[:-1], {**system[-1], "cache_control": _EPHEMERAL}]
    return out
