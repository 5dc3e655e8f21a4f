from __future__ import annotations

from meterline.compress.blocks import block_id, clean_code, file_label, piece_id, units


def pieces(text: str) -> list[str]:
    return [text[b.start : b.end] for b in units(text)]


def test_fences_of_both_kinds_and_any_indent() -> None:
    text = "a\n```python\nx = 1\n```\nb\n  ~~~~\ny\n  ~~~~\nc"
    assert pieces(text) == ["```python\nx = 1\n```", "  ~~~~\ny\n  ~~~~"]
    first, second = units(text)
    assert (first.tag, first.info, text[first.body_start : first.body_end]) == (
        "",
        "python",
        "x = 1\n",
    )
    assert second.is_code and second.kind == "fence"


def test_a_fence_closes_only_on_a_line_of_its_own_char_at_least_as_long() -> None:
    text = "````md\n```py\ninner\n```\n````\nafter"
    assert pieces(text) == ["````md\n```py\ninner\n```\n````"]


def test_inline_triple_backticks_are_not_a_fence_and_unclosed_fences_run_to_the_end() -> None:
    assert units("use ```x``` inline\n```notafence`x\n") == ()
    text = "intro\n```js\nlet a = 1;\n\nlet b;"
    assert pieces(text) == ["```js\nlet a = 1;\n\nlet b;"]


def test_file_sections_are_units_and_their_content_is_opaque() -> None:
    body = "x = '<file path=\"fake\">'\n```\nnot a fence of ours\n"
    text = f'see <file path="a.py">\n{body}</file> done'
    (block,) = units(text)
    assert text[block.start : block.end] == f'<file path="a.py">\n{body}</file>'
    assert text[block.body_start : block.body_end] == body
    assert block.tag == "file" and block.is_code


def test_context_holding_only_prose_is_a_unit_holding_blocks_is_a_container() -> None:
    prose = "<context>\nThe user prefers tabs.\n</context>"
    assert pieces(prose) == [prose]
    assert not units(prose)[0].is_code
    container = "<context>\nnotes\n```py\nx\n```\n<document>doc</document>\n</context>"
    assert pieces(container) == ["```py\nx\n```", "<document>doc</document>"]
    with_ref = "<document>\nsee [ref:block:0123abcd]\n</document>"
    assert units(with_ref) == ()


def test_tag_lookalikes_self_closing_and_unclosed_tags_are_not_blocks() -> None:
    assert units('<filename>x</filename> <file-tree>y</file> <file path="a"/> <context>open') == ()


def test_nested_sections_of_one_name_close_at_the_matching_tag() -> None:
    # The outer section holds a block, so it is a container and the inner one is the unit.
    text = "<context>a <context>b</context> c</context>!\n```\nafter\n```"
    assert pieces(text) == ["<context>b</context>", "```\nafter\n```"]


def test_clean_code_drops_blank_lines_and_trailing_blanks_but_keeps_indentation() -> None:
    body = "\n\ndef f(x):   \n\n    if x:\t\n\n\n        return x\n   \n"
    assert clean_code(body) == "def f(x):\n    if x:\n        return x\n"
    assert clean_code("a\n\nb") == "a\nb"
    assert clean_code(" \n\n") == ""
    assert clean_code(clean_code(body)) == clean_code(body)


def test_ids_are_the_sha256_of_the_exact_text() -> None:
    text = "x\n```\ncode\n```"
    (block,) = units(text)
    assert block_id(text, block) == piece_id("```\ncode\n```")
    assert piece_id("abc") == "ba7816bf"  # SHA-256("abc") = ba7816bf8f01cfea…


def test_file_labels() -> None:
    def label(text: str) -> tuple[str, bool]:
        return file_label(units(text)[0])

    assert label('<file path="Lib/json/decoder.py">x</file>') == ("Lib/json/decoder.py", True)
    assert label("<file>x</file>") == ("file", False)
    assert label("```python Lib/textwrap.py\nx\n```") == ("Lib/textwrap.py", True)
    assert label("```py:src/app.py\nx\n```") == ("src/app.py", True)
    assert label("```python\nx\n```") == ("python", False)
    assert label("```\nx\n```") == ("code", False)
    assert label("<document>x</document>") == ("document", False)
