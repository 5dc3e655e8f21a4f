"""Heuristic request classification in microseconds: task type, complexity, language, stack, domain.

Runs on every request, so it reads the last user message only — the words of its prose (the first
6 KB and last 2 KB of it) and of both ends (240 characters each) of its first four code blocks, its
fence tags and line counts — plus cheap features of the rest: lengths, turns, tools. No tokenizer:
tokens are estimated as characters / 4. The vocabulary is in :mod:`meterline.routing.keywords`.

Task type. Each task keyword adds its weight to its task (3 = names it, 2 = asks for it, 1 = hints
at it); a pasted stack trace adds 3 to ``debug``, any "error"/"exception" 1; explain-style
questions ("what does", "why does") count only next to code, and ``code_review`` needs code to
review. The highest score wins, ties in the order debug, code_review, refactor, explain, code_gen.
A short question (under 300 characters, no code, no trace) is ``simple_qa`` when nothing scores 2,
or when it asks for a fact ("what is …") or how to do something ("how do I …", unless it is about
a failure). Anything else is ``other``.

Complexity, 0–100, from ``tokens`` (all messages, chars / 4), code ``blocks`` and ``lines`` in the
last user message, ``user_turns``, ``system_tokens``, ``n_tools`` and the distinct ``hard`` /
``easy`` keywords read (keywords.HARD, keywords.EASY)::

    size     = min(45, 5 * log2(1 + tokens / 20))
    code     = min(20, 3 * blocks + 3 * log2(1 + lines / 5))
    turns    = min(10, 2.5 * (user_turns - 1))
    system   = min(6, 1.5 * log2(1 + system_tokens / 50))
    tools    = min(8, 4 + n_tools) if n_tools else 0
    keywords = 10 * min(hard, 4) - 8 * min(easy, 2)
    complexity = clamp(round(size + code + turns + system + tools + keywords), 0, 100)

Every term is non-decreasing in its input, so more text or code never lowers the score, all else
(the keywords read) equal. Bands: low < 34 <= medium < 67 <= high.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from meterline.routing import keywords as kw
from meterline.types import (
    ChatRequest,
    Message,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
)

__all__ = ["Classification", "TaskType", "classify", "complexity_band"]

TaskType = Literal["simple_qa", "code_gen", "code_review", "debug", "refactor", "explain", "other"]
_TASKS: tuple[TaskType, ...] = ("debug", "code_review", "refactor", "explain", "code_gen")
_HEAD, _TAIL = 6000, 2000  # prose window
_CODE_END, _CODE_BLOCKS = 240, 4  # imports sit at the top of a block, errors at the bottom
_SHORT = 300
_TECHNICAL = frozenset({"ref", "lang", "stack", "domain", "syntax", "trace"})  # words about code
_LANGUAGE_DOMAIN = {"swift": "mobile", "kotlin": "mobile", "dart": "mobile", "sql": "data"}
_STACK_RANK = {stack: rank for rank, stack in enumerate(dict.fromkeys(kw.STACKS.values()))}
_DOMAIN_RANK = {domain: rank for rank, domain in enumerate(kw.DOMAINS)}


@dataclass(frozen=True, slots=True)
class Classification:
    """What a request asks for and how hard it looks; ``signals`` say why, for route headers."""

    task_type: TaskType
    complexity: int
    language: str | None = None
    stack: str | None = None
    domain: str | None = None
    signals: tuple[str, ...] = ()


def complexity_band(complexity: int) -> str:
    """``low`` (< 34), ``medium`` (< 67) or ``high``."""
    return "low" if complexity < 34 else "medium" if complexity < 67 else "high"


def classify(request: ChatRequest) -> Classification:
    """Classify ``request`` from its last user message and cheap features of the rest."""
    prompt = _Prompt(next((m.text for m in reversed(request.messages) if m.role == "user"), ""))
    scan = prompt.scan
    signals: list[str] = []
    task = _task(scan, prompt, signals)
    stack = _stack(scan, prompt.tags)
    language = _language(scan, prompt, stack, signals)
    if stack:
        signals.append(f"stack:{stack}")
    complexity = _complexity(request, prompt, scan, signals)
    domain = _domain(scan, stack, language)
    return Classification(task, complexity, language, stack, domain, tuple(signals))


class _Scan:
    """The vocabulary found in the prompt: per kind of meaning, each value's total weight."""

    __slots__ = ("tallies", "hits")

    def __init__(self) -> None:
        self.tallies: dict[str, dict[str, int]] = {}
        self.hits: list[tuple[str, str]] = []  # (task, word) for the signals

    def __getitem__(self, kind: str) -> dict[str, int]:
        return self.tallies.get(kind) or {}

    def read(self, low: str, *, prose: bool) -> None:
        """Tally the words of lower-cased ``low``; of code only languages, stacks and traces."""
        norm, vocab, anchors = " " + kw.normalize(low), kw.VOCAB, kw.ANCHORS
        for word in (kw.WORDS if prose else kw.CODE_WORDS).intersection(norm.split()):
            if word in vocab:
                self._add(word, prose)
            for phrase in anchors.get(word, ()):
                if f" {phrase}" in norm:
                    self._add(phrase, prose)

    def _add(self, key: str, prose: bool) -> None:
        word, meanings = kw.VOCAB[key]
        for kind, value, weight in meanings:
            if prose or kind in kw.CODE_KINDS:
                tally = self.tallies.setdefault(kind, {})
                tally[value] = tally.get(value, 0) + weight
                if kind == "task" or kind == "ask":
                    self.hits.append((value, word))


class _Prompt:
    """The last user message: a bounded prose window, the fenced code blocks, their words."""

    __slots__ = ("low", "tags", "blocks", "code", "code_lines", "files", "scan", "trace")

    def __init__(self, text: str) -> None:
        parts = text.split("```")
        prose = "\n".join(parts[0::2])
        if len(prose) > _HEAD + _TAIL:
            prose = prose[:_HEAD] + "\n" + prose[-_TAIL:]
        self.low = low = prose.lower().replace("\u2019", "'")
        blocks = [p.partition("\n") for p in parts[1::2]]
        self.blocks = len(blocks)
        self.tags = [tag.strip().partition(" ")[0].lower() for tag, _, _ in blocks]
        self.code = code = "\n".join(_ends(body) for _, _, body in blocks[:_CODE_BLOCKS]).lower()
        self.scan = scan = _Scan()
        scan.read(low, prose=True)
        scan.read(code, prose=False)
        self.code_lines = sum(body.count("\n") for _, _, body in blocks)
        if not blocks and len(scan["syntax"]) >= 3:  # code pasted without a fence
            self.code_lines = sum(prose.count(marker) for marker in kw.CODE_LINE_MARKERS)
        self.trace = "trace" in scan.tallies or any(m in code for m in kw.TRACE_FRAMES)
        self.trace = self.trace or any(m in low for m in kw.TRACE_FRAMES + kw.ERROR_LINES)
        self.files = _files(low)

    @property
    def has_code(self) -> bool:
        return self.code_lines > 0 or self.blocks > 0


def _ends(body: str) -> str:
    return body if len(body) <= 2 * _CODE_END else f"{body[:_CODE_END]}\n{body[-_CODE_END:]}"


def _files(low: str) -> list[str]:
    """Languages of the file names mentioned (``main.rs``, ``app.py``)."""
    found = kw.EXT_RE.finditer(low)
    return [kw.EXTENSIONS[m.group(1)] for m in found if m.start() and low[m.start() - 1].isalnum()]


def _task(scan: _Scan, prompt: _Prompt, signals: list[str]) -> TaskType:
    scores, low = dict(scan["task"]), prompt.low
    if prompt.trace:
        scores["debug"] = scores.get("debug", 0) + 3
        signals.append("stack_trace")
    if "error" in low or "exception" in low:
        scores["debug"] = scores.get("debug", 0) + 1
        scan.hits.append(("debug", "error"))
    if prompt.has_code or prompt.files or "`" in low or not _TECHNICAL.isdisjoint(scan.tallies):
        for ask, weight in scan["ask"].items():
            scores[ask] = scores.get(ask, 0) + weight
    else:  # nothing to review, and "what does X do" is a plain question
        scores.pop("code_review", None)
    best = max(_TASKS, key=lambda t: scores.get(t, 0))
    if _is_simple_question(low, prompt, best, scores.get(best, 0)):
        signals.append("short_question")
        return "simple_qa"
    if scores.get(best, 0) == 0:
        return "other"
    words = dict.fromkeys(word for task, word in scan.hits if task == best)
    signals.extend(f"keyword:{word}" for word in list(words)[:3])
    return best


def _is_simple_question(low: str, prompt: _Prompt, best: str, best_score: int) -> bool:
    if len(low) >= _SHORT or prompt.has_code or prompt.trace:
        return False
    if kw.DEFINE_RE.match(low):
        return True
    if kw.HOWTO_RE.match(low):
        return best != "debug" or best_score < 2
    return best_score < 2 and low.rstrip().endswith("?")


def _stack(scan: _Scan, tags: list[str]) -> str | None:
    found = set(scan["stack"]).union(kw.FENCE_STACKS[t] for t in tags if t in kw.FENCE_STACKS)
    return min(found, key=_STACK_RANK.__getitem__) if found else None


def _language(scan: _Scan, prompt: _Prompt, stack: str | None, signals: list[str]) -> str | None:
    """The first source that names one: fence tags, file names, words, the stack, syntax."""
    language, source = _top(kw.FENCE_TAGS.get(t) for t in prompt.tags), "fence"
    if language is None:
        language, source = _top(prompt.files), "file"
    if language is None:
        langs = scan["lang"]
        language, source = max(langs, key=langs.__getitem__) if langs else None, "name"
    if language is None:
        language, source = kw.STACK_LANGUAGE.get(stack or ""), "stack"
    if language is None and prompt.has_code:
        code = prompt.code[:_CODE_END] if prompt.blocks else prompt.low[:_CODE_END]
        language, source = next((lang for cue, lang in kw.SYNTAX if cue in code), None), "syntax"
    if language is not None:
        signals.append(f"language:{language}({source})")
    return language


def _top(values: Iterable[str | None]) -> str | None:
    """The most frequent value, the first of equals."""
    counts: dict[str, int] = {}
    for value in values:
        if value:
            counts[value] = counts.get(value, 0) + 1
    return max(counts, key=counts.__getitem__) if counts else None


def _domain(scan: _Scan, stack: str | None, language: str | None) -> str | None:
    votes = dict(scan["domain"])
    if stack:
        implied = kw.STACK_DOMAIN.get(stack, "web")
        votes[implied] = votes.get(implied, 0) + 2
    if language in _LANGUAGE_DOMAIN:
        implied = _LANGUAGE_DOMAIN[language]
        votes[implied] = votes.get(implied, 0) + 1
    return min(votes, key=lambda d: (-votes[d], _DOMAIN_RANK[d])) if votes else None


def _complexity(request: ChatRequest, prompt: _Prompt, scan: _Scan, signals: list[str]) -> int:
    chars = system = turns = 0
    for message in request.messages:
        size = _chars(message)
        chars += size
        if message.role == "system":
            system += size
        turns += message.role == "user"
    tokens, tools = chars // 4, len(request.tools)
    blocks, lines = prompt.blocks, prompt.code_lines
    raw = (
        min(45.0, 5 * math.log2(1 + tokens / 20))
        + min(20.0, 3 * blocks + 3 * math.log2(1 + lines / 5))
        + min(10.0, 2.5 * max(0, turns - 1))
        + min(6.0, 1.5 * math.log2(1 + system / 4 / 50))
        + (min(8, 4 + tools) if tools else 0)
        + 10 * min(len(scan["hard"]), 4)
        - 8 * min(len(scan["easy"]), 2)
    )
    signals.append(f"tokens:~{tokens}")
    for name, count in (("code_blocks", blocks), ("code_lines", lines), ("tools", tools)):
        if count:
            signals.append(f"{name}:{count}")
    if turns > 1:
        signals.append(f"turns:{turns}")
    for kind in ("hard", "easy"):
        if kind in scan.tallies:
            signals.extend(f"{kind}:{word}" for word in sorted(scan.tallies[kind]))
    return max(0, min(100, round(raw)))


def _chars(message: Message) -> int:
    size = 0
    for part in message.parts:
        if isinstance(part, (TextPart, ThinkingPart, ToolResultPart)):
            size += len(part.text)
        elif isinstance(part, ToolCallPart):
            size += len(part.name) + len(part.arguments)
    return size
