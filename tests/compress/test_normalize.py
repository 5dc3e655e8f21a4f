from __future__ import annotations

import inspect
import re

import pytest

from meterline.compress import normalize
from meterline.compress.normalize import normalize_text
from meterline.types import ImagePart, TextPart, ToolCallPart, ToolResultPart
from tests.compress.convo import chat, fence, file_block, msg, stdlib


def test_prose_rules_exactly() -> None:
    text = (
        "Hello   world.  \n\n\n\nSecond\tline  with \t blanks \n"
        "* one\n+ two\n• three\n  * nested\n*emphasis* stays\n**bold** stays\n\n\n"
    )
    assert normalize_text(text) == (
        "Hello world.\n\nSecond\tline with blanks\n"
        "- one\n- two\n- three\n  - nested\n*emphasis* stays\n**bold** stays\n\n"
    )


def test_indentation_and_thematic_breaks_stay() -> None:
    text = "List:\n    indented  twice\n\t\ttabbed\n* * *\n- - -"
    assert normalize_text(text) == "List:\n    indented twice\n\t\ttabbed\n* * *\n- - -"


def test_code_fences_are_untouched_byte_for_byte() -> None:
    code = fence("python", "def f(x):\n\n    if x:   # two\n\t\treturn  x   \n\n\n* not a bullet\n")
    text = f"Look  here:  \n\n\n{code}\n\n\n* done   "
    assert normalize_text(text) == f"Look here:\n\n{code}\n\n- done"


def test_file_sections_are_untouched_but_context_prose_is_normalised() -> None:
    source = "x = {'a':  1}   \n\n\n\n*  args\n"
    text = f"{file_block('a.py', source)}\n<context>\nSome   notes.  \n</context>"
    assert (
        normalize_text(text) == f"{file_block('a.py', source)}\n<context>\nSome notes.\n</context>"
    )


def test_plus_lines_of_a_diff_are_not_bullets() -> None:
    diff = "diff --git a/x b/x\n@@ -1 +1 @@\n- old line\n+ new line\n* note"
    assert normalize_text(diff) == "diff --git a/x b/x\n@@ -1 +1 @@\n- old line\n+ new line\n- note"


def test_tool_results_keep_runs_of_blanks_and_bullets() -> None:
    table = "name    size  \nalpha   10\n\n\n\n* raw\n"
    result = ToolResultPart("call_1", (TextPart(table),))
    request = chat(msg("user", "list  files"), msg("tool", result))
    out = normalize(request)
    assert out.messages[0].text == "list files"
    part = out.messages[1].parts[0]
    assert isinstance(part, ToolResultPart)
    assert part.text == "name    size\nalpha   10\n\n* raw\n"
    assert part.tool_call_id == "call_1"


def test_other_parts_are_kept_as_they_are() -> None:
    image = ImagePart(url="https://example.com/a.png")
    call = ToolCallPart("c1", "read_file", '{"path":  "a.py"}')
    request = chat(msg("user", "look  at", image), msg("assistant", call))
    out = normalize(request)
    assert out.messages[0].parts[1] is image
    assert out.messages[1] is request.messages[1]
    assert normalize(out) is out  # nothing left to do: the very same request comes back


def _words(text: str) -> list[str]:
    return re.sub(r"(?m)^([ \t]*)[*+•](?=[ \t])", r"\1-", text).split()


@pytest.mark.parametrize("module", ["argparse", "textwrap", "difflib", "json"])
def test_wording_and_order_never_change(module: str) -> None:
    """On real docstrings, only whitespace and bullet markers may differ."""
    docs = "\n\n\n".join(
        inspect.getdoc(obj) or "" for obj in vars(__import__(module)).values() if callable(obj)
    )
    text = docs + "\n\n" + fence("python", stdlib(module)[:3000])
    out = normalize_text(text)
    assert _words(out) == _words(text)
    assert len(out) <= len(text)
    assert "\n\n\n" not in out.split("```", 1)[0]
