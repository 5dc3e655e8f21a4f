from __future__ import annotations

import hashlib

from meterline.compress import dedup, expand
from meterline.compress.blocks import units
from meterline.compress.tables import REFS, parse_refs, table_text
from meterline.types import ImagePart, TextPart, ToolCallPart, ToolResultPart
from tests.compress.convo import chat, fence, file_block, msg, stdlib

SOURCE = stdlib("json.decoder")[:1500]
FILE = file_block("Lib/json/decoder.py", SOURCE)
FILE_ID = hashlib.sha256(FILE.encode()).hexdigest()[:8]
NOTE = (
    "Each [ref:block:ID] stands for an exact copy of the block listed here, shown in full earlier "
    "in the conversation (blank lines inside code may be dropped)."
)


def test_later_copies_become_references_listed_at_the_top_of_the_system_prompt() -> None:
    request = chat(
        msg("system", "Be brief."),
        msg("user", f"{FILE}\n\nWhat does this do?"),
        msg("assistant", "It decodes JSON."),
        msg("user", f"{FILE}\n\nAnd errors?"),
    )
    out = dedup(request)
    assert [m.text for m in out.messages[1:]] == [
        f"{FILE}\n\nWhat does this do?",
        "It decodes JSON.",
        f"[ref:block:{FILE_ID}]\n\nAnd errors?",
    ]
    table, original = out.messages[0].parts
    assert original == TextPart("Be brief.")
    assert isinstance(table, TextPart)
    assert table.text == (
        f"<meterline-refs>\n{NOTE}\n"
        f'[ref:block:{FILE_ID}] = the <file path="Lib/json/decoder.py"> block first shown in message 2\n'
        "</meterline-refs>\n\n"
    )


def test_a_system_message_is_created_for_the_table_and_expand_removes_it() -> None:
    code = fence("python", SOURCE)
    request = chat(msg("user", code), msg("assistant", "ok"), msg("user", f"again:\n{code}"))
    out = dedup(request)
    assert out.messages[0].role == "system"
    assert len(out.messages) == 4
    assert "first shown in message 1" in out.messages[0].text  # numbering ignores the new message
    assert out.messages[3].text.startswith("again:\n[ref:block:")
    assert expand(out) == request


def test_small_blocks_and_different_blocks_stay() -> None:
    small = fence("", "x = 1\n")
    other = file_block("Lib/json/decoder.py", SOURCE.replace("import", "from x import"))
    request = chat(msg("user", f"{small}\n{FILE}"), msg("user", f"{small}\n{other}"))
    assert dedup(request) is request


def test_blocks_inside_a_container_are_deduplicated_one_by_one() -> None:
    a, b = fence("python a.py", SOURCE), fence("python b.py", stdlib("textwrap")[:900])
    changed = fence("python b.py", stdlib("textwrap")[:950])
    first = f"<context>\n{a}\n{b}\n</context>\nQ1"
    second = f"<context>\n{a}\n{changed}\n</context>\nQ2"
    out = dedup(chat(msg("user", first), msg("user", second)))
    a_id = hashlib.sha256(a.encode()).hexdigest()[:8]
    assert out.messages[2].text == f"<context>\n[ref:block:{a_id}]\n{changed}\n</context>\nQ2"
    assert expand(out).messages == (msg("user", first), msg("user", second))


def test_tool_results_are_deduplicated_and_other_parts_kept() -> None:
    call = ToolCallPart("c1", "read_file", '{"path": "Lib/json/decoder.py"}')
    image = ImagePart(data="iVBORw0KGgo=", media_type="image/png")
    result = ToolResultPart("c1", (TextPart(FILE), image))
    request = chat(
        msg("user", f"{FILE}\nFix it."),
        msg("assistant", "Reading.", call),
        msg("tool", result),
    )
    out = dedup(request)
    part = out.messages[3].parts[0]
    assert isinstance(part, ToolResultPart)
    assert part.text == f"[ref:block:{FILE_ID}]"
    assert part.content[1] is image and part.tool_call_id == "c1"
    assert out.messages[2] is request.messages[1]
    assert expand(out) == request


def test_round_trip_gives_every_block_back_exactly() -> None:
    files = {m: file_block(f"Lib/{m}.py", stdlib(m)) for m in ("textwrap", "shlex", "json.encoder")}
    answer = fence("python", stdlib("textwrap")[2000:4000])
    history = [msg("system", "You review code.")]
    for turn, open_files in enumerate([("textwrap",), ("textwrap", "shlex"), ("shlex",)] * 2):
        context = "\n\n".join(files[m] for m in open_files)
        history += [msg("user", f"{context}\n\nQuestion {turn}?"), msg("assistant", answer)]
    request = chat(*history)
    out = dedup(request)
    assert sum(map(len, (m.text for m in out.messages))) < sum(len(m.text) for m in history) / 2
    entries = parse_refs(table_text(out, REFS))
    assert len(entries) == 3  # textwrap, shlex, the quoted answer
    back = expand(out)
    assert back == request
    originals = {
        request.messages[i].text[b.start : b.end]
        for i in range(len(history))
        for b in units(request.messages[i].text)
    }
    returned = {m.text[b.start : b.end] for m in back.messages for b in units(m.text)}
    assert originals == returned
