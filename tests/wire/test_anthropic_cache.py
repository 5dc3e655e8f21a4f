"""Automatic prompt-cache breakpoints for Anthropic."""

from __future__ import annotations

from meterline.wire.anthropic_cache import add_cache_breakpoints

LONG = "You are a careful reviewer. " * 200
TOOLS = [
    {"name": f"t{i}", "description": "x" * 900, "input_schema": {"type": "object"}}
    for i in range(5)
]


def test_long_system_and_tools_get_one_breakpoint_each() -> None:
    body = {
        "model": "m",
        "system": LONG,
        "tools": TOOLS,
        "messages": [{"role": "user", "content": "hi"}],
    }
    out = add_cache_breakpoints(body)
    assert out["system"] == [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}]
    assert out["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert all("cache_control" not in t for t in out["tools"][:-1])
    assert out["messages"] == body["messages"] and "cache_control" not in body["tools"][-1]


def test_short_prefixes_and_explicit_breakpoints_are_left_alone() -> None:
    short = {"model": "m", "system": "Be brief.", "messages": []}
    assert add_cache_breakpoints(short) == short
    mine = {
        "model": "m",
        "system": [
            {"type": "text", "text": LONG, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
        ],
        "tools": TOOLS,
        "messages": [],
    }
    assert add_cache_breakpoints(mine) == mine  # the client's own breakpoints win


def test_system_blocks_get_the_breakpoint_on_the_last_block() -> None:
    body = {
        "model": "m",
        "system": [{"type": "text", "text": LONG}, {"type": "text", "text": "Rules."}],
        "messages": [],
    }
    out = add_cache_breakpoints(body)
    assert out["system"][0] == {"type": "text", "text": LONG}
    assert out["system"][1]["cache_control"] == {"type": "ephemeral"}
