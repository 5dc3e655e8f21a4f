from __future__ import annotations

import inspect
import json
import random
import textwrap
from collections.abc import Callable

import pytest

from meterline.compress import CompressionSettings, compress, expand
from meterline.compress.blocks import units
from meterline.compress.code import compact_code_text
from meterline.compress.normalize import normalize_text
from meterline.compress.texts import iter_texts
from meterline.types import ChatRequest, TextPart, ToolCallPart, ToolResultPart
from tests.compress.convo import MODEL, chat, fence, file_block, msg, stdlib

LOSSLESS = CompressionSettings(model=MODEL, trim=False)
RULE = "Answer from the open files only, and say which function you mean."


def canonical(text: str) -> str:
    """What the lossless stages keep: everything but whitespace the normaliser and code stage drop."""
    return compact_code_text(normalize_text(text))


def ide_conversation() -> ChatRequest:
    """IDE-style turns: open files re-sent each turn, answers quoting code, one file edited."""
    files = {m: stdlib(m) for m in ("textwrap", "shlex", "json.decoder")}
    history = [msg("system", "You are a coding  assistant.")]
    plan: list[tuple[str, Callable[..., object] | None]] = [
        ("textwrap", textwrap.dedent),
        ("textwrap", textwrap.indent),
        ("shlex", None),
        ("json.decoder", json.loads),
    ]
    for turn, (module, topic) in enumerate(plan * 2):
        if turn == 5:
            files["shlex"] = files["shlex"].replace("import os", "import os  # edited", 1)
        context = file_block(f"Lib/{module}.py", files[module])
        history.append(msg("user", f"{context}\n\n  Question {turn}:   what  changed?\n{RULE}"))
        quoted = fence("python", inspect.getsource(topic)) if topic else "No code to quote."
        history.append(msg("assistant", f"* First point.\n* Second  point.\n\n{quoted}"))
    call = ToolCallPart("c1", "read_file", '{"path": "Lib/shlex.py"}')
    history.append(msg("assistant", "Reading.", call))
    history.append(
        msg("tool", ToolResultPart("c1", (TextPart(file_block("Lib/shlex.py", files["shlex"])),)))
    )
    return chat(*history)


def test_lossless_stages_round_trip_to_the_same_content() -> None:
    request = ide_conversation()
    out, report = compress(request, LOSSLESS)
    assert report.tokens_saved > report.tokens_before * 0.4
    for name in ("normalize", "dedup", "symbols", "code"):
        stage = report.stage(name)
        assert stage is not None and stage.tokens_saved > 0, name
    assert "<meterline-refs>" in out.messages[0].text
    assert "<meterline-symbols>" in out.messages[0].text
    back = expand(out)
    assert len(back.messages) == len(request.messages)
    before = [(site, canonical(text)) for site, text in iter_texts(request)]
    after = [(site, canonical(text)) for site, text in iter_texts(back)]
    assert after == before
    assert back.messages[-2] == request.messages[-2]  # the tool call


def test_every_original_block_comes_back() -> None:
    request = ide_conversation()
    back = expand(compress(request, LOSSLESS)[0])
    for (site, original), (_, returned) in zip(iter_texts(request), iter_texts(back), strict=True):
        expected = canonical(original)
        blocks = [expected[b.start : b.end] for b in units(expected)]
        found = [returned[b.start : b.end] for b in units(returned)]
        assert found == blocks, site
        assert "[ref:block:" not in returned and "§" not in returned


def test_expand_without_tables_changes_nothing() -> None:
    request = ide_conversation()
    assert expand(request) is request


PIECES = (
    RULE,
    "Reply in Markdown and quote only the code you change.",
    "  * bullet   with  spaces  ",
    "Thanks. See you.",
    "",
    "See § 4 for more.",
    "[ref:block:deadbeef] is literal text here",
    "<context>",
    "```",
)


def _random_text(rng: random.Random, seen: list[str]) -> str:
    parts = []
    for _ in range(rng.randrange(1, 5)):
        if seen and rng.random() < 0.5:
            parts.append(rng.choice(seen))
            continue
        module = rng.choice(("textwrap", "shlex", "json.decoder"))
        start = rng.randrange(0, 3000)
        body = stdlib(module)[start : start + rng.randrange(50, 1500)]
        if rng.random() < 0.3:
            body = body.replace("\n", "\n\n", 3)
        piece = rng.choice(
            (
                fence(rng.choice(("python", "", f"py Lib/{module}.py")), body),
                file_block(f"Lib/{module}.py", body),
                f"<context>\n{rng.choice(PIECES)}\n{fence('python', body)}\n</context>",
                f"<document>\n{body[:300]}\n</document>",
                "\n".join(rng.choice(PIECES) for _ in range(rng.randrange(1, 6))),
            )
        )
        seen.append(piece)
        parts.append(piece)
    return rng.choice(("\n\n", "\n", "\n\n\n", " ")).join(parts)


@pytest.mark.parametrize("seed", range(60))
def test_random_conversations_round_trip(seed: int) -> None:
    rng = random.Random(seed)
    seen: list[str] = []
    messages = [msg("system", _random_text(rng, seen))] if rng.random() < 0.5 else []
    for k in range(rng.randrange(1, 10)):
        if rng.random() < 0.15:
            result = ToolResultPart(f"c{k}", (TextPart(_random_text(rng, seen)),))
            messages.append(msg("tool", result))
        else:
            messages.append(msg(rng.choice(("user", "assistant")), _random_text(rng, seen)))
    request = chat(*messages)
    out, report = compress(request, LOSSLESS)
    assert [s.error for s in report.stages] == [None] * 4
    back = expand(out)
    assert len(back.messages) == len(request.messages)
    before = [(site, canonical(text)) for site, text in iter_texts(request)]
    assert [(site, canonical(text)) for site, text in iter_texts(back)] == before
    trimmed = CompressionSettings(
        model=MODEL, trim_threshold=0, keep_last_turns=2, drop_assistant_after=3
    )
    assert all(s.error is None for s in compress(request, trimmed)[1].stages)
