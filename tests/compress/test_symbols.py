from __future__ import annotations

import json
import traceback

from meterline.compress import expand, symbolize
from meterline.types import TextPart
from tests.compress.convo import chat, fence, file_block, msg

RULE = "Answer only from the document above and cite the section you used."
REPLY = "Reply in Markdown and quote only the code you change."


def test_a_repeated_line_becomes_a_symbol_defined_at_the_top() -> None:
    request = chat(*(msg("user", f"Question {k} about parsing?\n{RULE}") for k in range(4)))
    out = symbolize(request)
    assert [m.text for m in out.messages[1:]] == [
        f"Question {k} about parsing?\n§1" for k in range(4)
    ]
    assert out.messages[0].role == "system"
    assert out.messages[0].parts == (
        TextPart(
            "<meterline-symbols>\nEach §n stands for the quoted text:\n"
            f'§1 = "{RULE}"\n</meterline-symbols>\n\n'
        ),
    )
    assert expand(out) == request


def test_sentences_inside_lines_become_symbols_and_digits_after_them_stay_readable() -> None:
    lines = [f"Here is question {k}. {REPLY} Thanks {k}!" for k in range(4)]
    lines.append(f"Last one. {REPLY} 2 more files follow.")
    request = chat(msg("system", "You help."), *(msg("user", line) for line in lines))
    out = symbolize(request)
    assert [m.text for m in out.messages[1:]] == [
        *(f"Here is question {k}. §1 Thanks {k}!" for k in range(4)),
        "Last one. §1 2 more files follow.",
    ]
    assert out.messages[0].parts[1] == TextPart("You help.")
    assert expand(out) == request


def test_indentation_and_bullets_around_a_symbol_stay() -> None:
    request = chat(*(msg("user", f"Q{k}\n  - {RULE}   \n") for k in range(4)))
    out = symbolize(request)
    assert out.messages[1].text == "Q0\n  §1   \n"
    assert f'§1 = "- {RULE}"' in out.messages[0].text
    assert expand(out) == request


def test_code_and_file_contents_are_never_symbolised() -> None:
    code = fence("python", f"# {RULE}\nprint('{RULE}')\n")
    source = file_block("notes.txt", f"{RULE}\n{RULE}\n")
    request = chat(*(msg("user", f"{code}\n{source}\n{RULE}") for _ in range(4)))
    out = symbolize(request)
    assert [m.text for m in out.messages[1:]] == [f"{code}\n{source}\n§1"] * 4
    assert expand(out) == request


def test_nothing_happens_when_it_would_not_save_tokens() -> None:
    thrice = chat(*(msg("user", f"Q{k}\n{REPLY}") for k in range(3)))
    assert symbolize(thrice) is thrice  # 3 × 9 tokens saved do not pay for the table
    short = chat(*(msg("user", "Thanks a lot!") for _ in range(20)))
    assert symbolize(short) is short  # under 20 characters


def test_texts_that_already_use_the_section_sign_are_left_alone() -> None:
    request = chat(*(msg("user", f"See § 4.\n{RULE}") for _ in range(6)))
    assert symbolize(request) is request


def test_round_trip_with_a_pasted_traceback() -> None:
    try:
        json.loads('{"retries": 3,}')
    except json.JSONDecodeError:
        trace = traceback.format_exc()
    request = chat(*(msg("user", f"Still failing ({k}):\n{trace}\n{RULE}") for k in range(5)))
    out = symbolize(request)
    assert sum(len(m.text) for m in out.messages) < sum(len(m.text) for m in request.messages)
    assert expand(out) == request
