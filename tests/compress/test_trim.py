from __future__ import annotations

from meterline.compress import CompressionSettings, compress, expand, trim
from meterline.compress.code import compact_code_text
from meterline.compress.summary import MARK
from meterline.types import TextPart, ToolCallPart, ToolResultPart
from tests.compress.convo import chat, fence, file_block, msg, stdlib

A1 = stdlib("shlex")[:1200] + "\n"
A2 = A1.replace("import", "import sys, ", 1)
B = stdlib("textwrap")[:1500] + "\n"
SNIPPET = stdlib("shlex")[3000:3600] + "\n"
SYSTEM = msg("system", "You are a reviewer.")


def lines(body: str) -> int:
    return body.count("\n")


def conversation() -> list:  # type: ignore[type-arg]
    return [
        SYSTEM,
        msg("user", f"{file_block('a.py', A1)}\n\nWhat does a.py do? It looks odd."),
        msg("assistant", f"It parses input. More detail follows.\n{fence('python', SNIPPET)}"),
        msg("user", f"{file_block('b.py', B)}\n\nNow b.py. Explain it."),
        msg("assistant", "b.py formats text. It wraps paragraphs to a width given by the caller."),
        msg("user", "Is there a bug? I see odd output when the width is very small."),
        msg("assistant", "Maybe. Let me check the loop that breaks long words first."),
        msg("user", f"{file_block('a.py', A2)}\n\nI edited a.py. Better?"),
        msg("assistant", "Yes. It is better now."),
        msg("user", "Thanks. One more question."),
        msg("assistant", "Sure. Ask away."),
        msg("user", "How do I test it? Please be concise."),
    ]


def test_old_turns_become_summaries_and_recent_ones_stay_whole() -> None:
    history = conversation()
    out = trim(chat(*history))
    assert [m.text for m in out.messages] == [
        "You are a reviewer.",
        f"{MARK} What does a.py do?\n[code block: {lines(A1)} lines of a.py]",
        # A1 (10 turns old, an assistant turn) is dropped
        # the latest b.py and a.py stay whole (and a summary around them would not be shorter)
        f"{file_block('b.py', B)}\n\nNow b.py. Explain it.",
        f"{MARK} b.py formats text.",
        f"{MARK} Is there a bug?",
        f"{MARK} Maybe.",
        f"{file_block('a.py', A2)}\n\nI edited a.py. Better?",
        "Yes. It is better now.",
        "Thanks. One more question.",
        "Sure. Ask away.",
        "How do I test it? Please be concise.",
    ]
    assert out.messages[-4:] == tuple(history[-4:])
    assert out.messages[0] is history[0]


def test_old_code_blocks_are_replaced_by_placeholders_naming_their_file() -> None:
    history = conversation()
    history[2] = msg("assistant", f"See this.\n{fence('python Lib/shlex.py', SNIPPET)}")
    out = trim(chat(*history), keep_last=4, drop_after=20)
    assert out.messages[2] == history[2]  # the latest Lib/shlex.py: kept
    out = trim(
        chat(
            *history[:2],
            history[2],
            msg("user", fence("python Lib/shlex.py", SNIPPET + "x = 1\n")),
            *history[3:],
        ),
        drop_after=20,
    )
    assert (
        out.messages[2].text
        == f"{MARK} See this.\n[code block: {lines(SNIPPET)} lines of Lib/shlex.py]"
    )


def test_latest_user_message_tool_calls_and_their_results_are_kept() -> None:
    call = ToolCallPart("c1", "read_file", '{"path": "b.py"}')
    result = ToolResultPart("c1", (TextPart(f"Read 1 file.\n{file_block('b.py', B)}"),))
    history = [
        SYSTEM,
        msg("user", f"Please fix b.py. {'It is slow. ' * 20}"),
        msg("assistant", "Reading it.", call),
        msg("tool", result),
        *(
            msg("assistant" if k % 2 else "user", f"Turn {k}. " + "More words here. " * 10)
            for k in range(7)
        ),
        msg("user", "Do it now. Use the smallest change you can."),
        *(
            m
            for k in range(2)
            for m in (
                msg("assistant", ToolCallPart(f"w{k}", "write_file", "{}")),
                msg("tool", ToolResultPart(f"w{k}", (TextPart("ok"),))),
            )
        ),
    ]
    out = trim(chat(*history))
    kept_call = out.messages[2]
    assert kept_call.tool_calls == (call,)
    assert kept_call.text == "Reading it."  # a summary would not be shorter
    summarised = out.messages[3].parts[0]
    assert isinstance(summarised, ToolResultPart) and summarised.tool_call_id == "c1"
    assert summarised.text == f"Read 1 file.\n{file_block('b.py', B)}"  # the latest b.py
    assert out.messages[1].text == f"{MARK} Please fix b.py."
    assert "Do it now. Use the smallest change you can." in [m.text for m in out.messages]
    assert out.messages[-4:] == tuple(history[-4:])
    assert [m.text for m in out.messages].count(f"{MARK} Turn 0.") == 1  # user turns are kept


def test_references_still_resolve_after_trimming() -> None:
    big = file_block("Lib/shlex.py", stdlib("shlex")[:3000])
    history = [SYSTEM]
    for k in range(8):
        history += [
            msg("user", f"{big}\n\nQuestion {k}. Details follow."),
            msg("assistant", f"Answer {k}. More."),
        ]
    settings = CompressionSettings(trim_threshold=0, model="gpt-4o-mini")
    out, report = compress(chat(*history), settings)
    trimmed = report.stage("trim")
    assert trimmed is not None and not trimmed.skipped and trimmed.tokens_saved > 0
    assert out.messages[-2].text.startswith("[ref:block:")
    back = expand(out)
    assert "[ref:block:" not in "".join(m.text for m in back.messages)
    assert back.messages[-2].text == f"{compact_code_text(big)}\n\nQuestion 7. Details follow."
    assert len(back.messages) < len(history)  # the oldest assistant answers were dropped


def test_trimming_runs_only_above_the_threshold() -> None:
    request = chat(*conversation())
    below = CompressionSettings(trim_threshold=1_000_000)
    out, report = compress(request, below)
    stage = report.stage("trim")
    assert stage is not None and stage.skipped and stage.error is None
    assert stage.tokens_before == stage.tokens_after
    assert len(out.messages) == len(request.messages)
    above = CompressionSettings(trim_threshold=100)
    out, report = compress(request, above)
    stage = report.stage("trim")
    assert stage is not None and not stage.skipped and stage.tokens_after < stage.tokens_before
    assert len(out.messages) == len(request.messages) - 1
    assert out.messages[-1] == request.messages[-1]
