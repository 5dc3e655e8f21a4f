"""Was an answer a success? The upstream's verdict, heuristics on the answer, then ratings."""

from __future__ import annotations

import pytest

from meterline.routing.evaluator import evaluate, from_rating
from meterline.types import ChatRequest, ChatResponse, Message, TextPart, ToolCallPart, Usage

QUESTION = "What is the capital of Portugal?"
CODE_ASK = "Write a Python function that reverses a linked list."


def _request(text: str = QUESTION, max_tokens: int | None = None) -> ChatRequest:
    return ChatRequest("auto", (Message("user", (TextPart(text),)),), max_tokens=max_tokens)


def _answer(text: str, finish: str = "stop", tool: ToolCallPart | None = None) -> ChatResponse:
    parts: tuple[TextPart | ToolCallPart, ...] = (TextPart(text),) if text else ()
    if tool is not None:
        parts = (*parts, tool)
    return ChatResponse("r1", "m", Message("assistant", parts), finish, Usage())  # type: ignore[arg-type]


def test_a_plain_answer_is_a_success() -> None:
    verdict = evaluate(_request(), _answer("Lisbon is the capital of Portugal."), "ok")
    assert verdict.success and verdict.reason == "answered"


@pytest.mark.parametrize("status", ["error", "cancelled"])
def test_upstream_failures_fail(status: str) -> None:
    verdict = evaluate(_request(), _answer("Lisbon."), status)
    assert not verdict.success and verdict.reason == f"upstream {status}"


def test_no_answer_at_all_fails() -> None:
    verdict = evaluate(_request(), None, "ok")
    assert not verdict.success and verdict.reason == "upstream ok"


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_answer_fails(text: str) -> None:
    verdict = evaluate(_request(), _answer(text), "ok")
    assert not verdict.success and verdict.reason == "empty answer"


def test_content_filter_fails() -> None:
    verdict = evaluate(_request(), _answer("Lisbon", finish="content_filter"), "ok")
    assert not verdict.success and verdict.reason == "filtered"


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't share that.",
        "I am unable to answer questions about geography.",
        "I cannot help with that request.",
        "I can't assist with this.",
        "As an AI language model, I do not have opinions on capitals.",
        "Unfortunately I won't be able to do this one.",
        "Sorry — I am not able to do that.",
    ],
)
def test_refusals_fail(text: str) -> None:
    verdict = evaluate(_request(), _answer(text), "ok")
    assert not verdict.success and verdict.reason == "refusal"


def test_refusal_wording_deep_inside_a_long_answer_is_not_a_refusal() -> None:
    text = "Lisbon is the capital. " * 20 + "I'm sorry if that was obvious."
    assert evaluate(_request(), _answer(text), "ok").success


def test_far_too_short_for_a_long_question_fails() -> None:
    question = "Here is the background for my question. " * 12 + "Which city is the capital?"
    assert len(question) > 400
    verdict = evaluate(_request(question), _answer("Lisbon."), "ok")
    assert not verdict.success and verdict.reason == "too short for the question"
    # a short answer to a short question is fine; a fuller one to the long question too
    assert evaluate(_request(), _answer("Lisbon."), "ok").success
    assert evaluate(
        _request(question), _answer("The capital of Portugal is Lisbon, on the Tagus."), "ok"
    ).success


def test_no_code_when_code_was_asked_for_fails() -> None:
    verdict = evaluate(
        _request(CODE_ASK), _answer("You walk the list and flip each pointer."), "ok"
    )
    assert not verdict.success and verdict.reason == "no code in the answer"


@pytest.mark.parametrize(
    "text",
    [
        "```python\ndef reverse(head):\n    ...\n```",
        "Here you go:\ndef reverse(head): return head",
        "    prev = None\n    while node: ...",
        "const reverse = (head) => head;",
        "class Node: pass",
    ],
)
def test_code_in_the_answer_satisfies_a_code_request(text: str) -> None:
    assert evaluate(_request(CODE_ASK), _answer(text), "ok").success


def test_a_question_that_does_not_ask_for_code_needs_none() -> None:
    assert evaluate(
        _request("Why is the sky blue?"), _answer("Rayleigh scattering of sunlight."), "ok"
    ).success


def test_tool_calls_count_as_success() -> None:
    call = ToolCallPart("call_1", "run_code", '{"src": "print(1)"}')
    verdict = evaluate(_request(CODE_ASK), _answer("", finish="tool_calls", tool=call), "ok")
    assert verdict.success and verdict.reason == "tool call"
    # even with a refusal-looking preamble: the model acted
    assert evaluate(_request(), _answer("I'm sorry, let me look it up.", tool=call), "ok").success


def test_cut_off_by_the_token_limit() -> None:
    cut = _answer("Lisbon is the capital of", finish="length")
    verdict = evaluate(_request(), cut, "ok")
    assert not verdict.success and verdict.reason == "cut off"
    # the caller asked for a limit: hitting it is what they wanted
    assert evaluate(_request(max_tokens=5), cut, "ok").success


def test_the_last_user_message_is_judged() -> None:
    request = ChatRequest("auto", (
        Message("user", (TextPart(CODE_ASK),)),
        Message("assistant", (TextPart("```py\ndef reverse(h): ...\n```"),)),
        Message("user", (TextPart("Thanks! Which country is Lisbon in?"),)),
    ))  # fmt: skip
    assert evaluate(request, _answer("Portugal."), "ok").success


@pytest.mark.parametrize(
    ("rating", "expected"), [(5, True), (4, True), (3, None), (2, False), (1, False)]
)
def test_from_rating(rating: int, expected: bool | None) -> None:
    assert from_rating(rating) is expected
