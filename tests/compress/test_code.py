from __future__ import annotations

import hashlib

from meterline.compress import compact_code, dedup, expand
from meterline.compress.code import compact_code_text
from meterline.compress.tables import REFS, parse_refs, table_text
from tests.compress.convo import chat, fence, file_block, msg, stdlib

BODY = "class A:   \n\n    def f(self):\n\n\n        return  1\n\t\n"
CLEAN = "class A:\n    def f(self):\n        return  1\n"


def short_id(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def test_blank_lines_and_trailing_blanks_go_inside_code_only() -> None:
    text = f"Prose  stays.  \n\n\n{fence('python', BODY)}\n\n{file_block('a.py', BODY)}\ntail  "
    assert compact_code_text(text) == (
        f"Prose  stays.  \n\n\n{fence('python', CLEAN)}\n\n{file_block('a.py', CLEAN)}\ntail  "
    )


def test_real_source_keeps_every_code_line_in_order_with_its_indentation() -> None:
    source = stdlib("textwrap")
    out = compact_code_text(fence("python", source))
    kept = [line.rstrip() for line in source.split("\n") if line.strip()]
    assert out == "```python\n" + "\n".join(kept) + "\n```"


def test_blocks_identical_after_cleaning_become_references() -> None:
    spaced = fence("python", stdlib("shlex")[:1200] + "\n\n\n")
    tight = fence("python", stdlib("shlex")[:1200])
    request = chat(msg("user", spaced), msg("assistant", "Noted."), msg("user", f"{tight}\nWhy?"))
    assert dedup(request) is request  # not exact copies
    out = compact_code(request)
    cleaned = compact_code_text(spaced)
    assert out.messages[1].text == cleaned
    assert out.messages[3].text == f"[ref:block:{short_id(cleaned)}]\nWhy?"
    entries = parse_refs(table_text(out, REFS))
    assert list(entries) == [short_id(cleaned)]
    assert entries[short_id(cleaned)].message == 1


def test_references_made_by_dedup_are_renamed_when_their_block_is_cleaned() -> None:
    block = file_block("Lib/shlex.py", stdlib("shlex")[:2000])
    request = chat(
        msg("user", f"{block}\nQ1"), msg("user", f"{block}\nQ2"), msg("user", f"{block}\nQ3")
    )
    deduped = dedup(request)
    assert deduped.messages[2].text == f"[ref:block:{short_id(block)}]\nQ2"
    out = compact_code(deduped)
    new_id = short_id(compact_code_text(block))
    assert new_id != short_id(block)
    assert [m.text for m in out.messages[2:]] == [
        f"[ref:block:{new_id}]\nQ2",
        f"[ref:block:{new_id}]\nQ3",
    ]
    assert list(parse_refs(table_text(out, REFS))) == [new_id]
    assert [m.text for m in expand(out).messages] == [
        compact_code_text(m.text) for m in request.messages
    ]


def test_nothing_to_clean_returns_the_same_request() -> None:
    request = chat(msg("user", fence("python", CLEAN)), msg("user", "no code here\n\n\n"))
    assert compact_code(request) is request
