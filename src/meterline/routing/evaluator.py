"""Was an answer a success? Three layers, strongest last:

1. the upstream's own verdict: an error, a timeout, a cancelled stream, a CLI's exit status;
2. heuristics on the answer: empty, far too short for the question, a refusal, no code when code
   was asked for, cut off by the token limit;
3. the user's feedback (1–5): 4–5 is a success and 1–2 a failure, whatever the heuristics said.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from meterline.types import ChatRequest, ChatResponse

__all__ = ["Verdict", "evaluate", "from_rating"]

_REFUSALS = re.compile(
    r"\b(i(?:'m| am) (?:sorry|unable|not able)|i can(?:no|')t (?:help|assist|do that)|"
    r"as an ai(?: language model)?|i won't be able to)\b",
    re.IGNORECASE,
)
_ASKS_FOR_CODE = re.compile(
    r"\b(write|implement|code|function|class|script|fix|refactor|snippet)\b", re.IGNORECASE
)
_HAS_CODE = re.compile(r"```|^\s{4}\S|\bdef |\bfunction\b|\bclass \w|=>|;\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Verdict:
    success: bool
    reason: str


def _question(request: ChatRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            return message.text
    return ""


_CODE_TASKS = ("code_gen", "debug", "refactor")


def evaluate(
    request: ChatRequest, answer: ChatResponse | None, status: str, task_type: str | None = None
) -> Verdict:
    """Layers 1 and 2: the outcome and the answer's content. The no-code check applies to
    code tasks (``task_type``), or, unclassified, to questions that ask for code."""
    if status != "ok" or answer is None:
        return Verdict(False, f"upstream {status}")
    if answer.message.tool_calls:
        return Verdict(True, "tool call")
    text = answer.message.text.strip()
    question = _question(request)
    if not text:
        return Verdict(False, "empty answer")
    if answer.finish_reason == "content_filter":
        return Verdict(False, "filtered")
    if _REFUSALS.search(text[:300]):
        return Verdict(False, "refusal")
    if len(question) > 400 and len(text) < 40:
        return Verdict(False, "too short for the question")
    wants_code = task_type in _CODE_TASKS if task_type else bool(_ASKS_FOR_CODE.search(question))
    if wants_code and not _HAS_CODE.search(text):
        return Verdict(False, "no code in the answer")
    if answer.finish_reason == "length" and request.max_tokens is None:
        return Verdict(False, "cut off")
    return Verdict(True, "answered")


def from_rating(rating: int) -> bool | None:
    """Layer 3: 4–5 success, 1–2 failure, 3 says nothing."""
    if rating >= 4:
        return True
    if rating <= 2:
        return False
    return None
