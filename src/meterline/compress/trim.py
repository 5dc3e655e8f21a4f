"""Stage 5, context trimming: the only lossy stage, run only above a token threshold.

Counting turns as the non-system messages, newest last:

* the last ``keep_last`` turns, the latest user message and every system message stay whole;
* older turns become extractive summaries (see :mod:`meterline.compress.summary`), with their
  code blocks replaced by ``[code block: N lines of FILE]``;
* assistant turns older than ``drop_after`` turns are dropped (not those holding tool calls, whose
  results would be orphaned, nor those holding a block that must stay).

Blocks that must stay whole wherever they are: the most recent occurrence of every file (a
``<file path=…>`` section or a fence whose info string names a path), and the block every
``[ref:block:…]`` left in the conversation points to. The refs table is renumbered to match.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from meterline.compress.blocks import Block, block_id, file_label
from meterline.compress.summary import Occurrence, occurrences, placeholder, summarize
from meterline.compress.tables import (
    REFS,
    RefEntry,
    parse_refs,
    put_table,
    remove_table,
    render_refs,
    table_text,
)
from meterline.compress.texts import iter_texts, numbered
from meterline.types import ChatRequest, ContentPart, Message, TextPart, ToolResultPart

__all__ = ["trim"]


@dataclass(slots=True)
class _Plan:
    entries: dict[str, RefEntry]
    whole: set[int]
    blocks: dict[str, tuple[str, Block]] = field(default_factory=dict)  # id -> first unit
    found: dict[str, list[Occurrence]] = field(default_factory=dict)  # per text
    keep: set[tuple[int, str]] = field(default_factory=set)  # (message, id) of units kept whole
    kept_refs: set[tuple[int, str]] = field(default_factory=set)  # refs kept in summaries

    def path(self, occurrence: Occurrence) -> str | None:
        block = occurrence.block
        if block is None and occurrence.id in self.blocks:
            block = self.blocks[occurrence.id][1]
        if block is None:
            return None
        label, is_path = file_label(block)
        return label if is_path else None

    def scan(self, request: ChatRequest) -> None:
        last: dict[str, tuple[int, Occurrence]] = {}
        for site, text in iter_texts(request):
            for occurrence in self.occurrences(text):
                if occurrence.block is not None:
                    self.blocks.setdefault(occurrence.id, (text, occurrence.block))
                elif site.message in self.whole:
                    self.need(occurrence.id)
                path = self.path(occurrence)
                if path is not None:
                    last[path] = (site.message, occurrence)
        for number, occurrence in last.values():
            if occurrence.block is None:
                self.kept_refs.add((number, occurrence.id))
                self.need(occurrence.id)
            else:
                self.keep.add((number, occurrence.id))

    def occurrences(self, text: str) -> list[Occurrence]:
        if text not in self.found:
            self.found[text] = list(occurrences(text, block_id))
        return self.found[text]

    def summary(self, number: int, text: str) -> str:
        """The summary of ``text``, or ``text`` itself when the summary would not be shorter."""
        short = summarize(text, self.occurrences(text), lambda o: self.line(number, text, o))
        return short if len(short) < len(text) else text

    def need(self, ref: str) -> None:
        entry = self.entries.get(ref)
        if entry is not None:
            self.keep.add((entry.message, ref))

    def holds_kept(self, number: int, text: str) -> bool:
        return any(
            (number, o.id) in self.keep or (number, o.id) in self.kept_refs
            for o in self.found.get(text, ())
        )

    def line(self, number: int, text: str, occurrence: Occurrence) -> str | None:
        if occurrence.block is not None:
            if (number, occurrence.id) in self.keep:
                return text[occurrence.start : occurrence.end]
            return placeholder(text, occurrence.block)
        if (number, occurrence.id) in self.kept_refs:
            return text[occurrence.start : occurrence.end]
        if occurrence.id not in self.blocks:
            return None
        return placeholder(*self.blocks[occurrence.id])


def _summarize_parts(plan: _Plan, number: int, message: Message) -> tuple[ContentPart, ...]:
    """The message's text parts as one summary (tool results each summarised on their own)."""
    texts = [p for p in message.parts if isinstance(p, TextPart)]
    joined = "\n".join(p.text for p in texts)
    summary = plan.summary(number, joined) if texts else joined
    parts: list[ContentPart] = []
    for part in message.parts:
        if isinstance(part, TextPart) and summary != joined:
            if part is texts[0]:
                parts.append(replace(part, text=summary))
        elif isinstance(part, ToolResultPart):
            content = tuple(
                replace(p, text=plan.summary(number, p.text)) if isinstance(p, TextPart) else p
                for p in part.content
            )
            parts.append(replace(part, content=content))
        else:
            parts.append(part)
    return tuple(parts)


def _droppable(plan: _Plan, number: int, message: Message) -> bool:
    texts = [p.text for p in message.parts if isinstance(p, TextPart)]
    return not message.tool_calls and not any(plan.holds_kept(number, t) for t in texts)


def trim(request: ChatRequest, keep_last: int = 4, drop_after: int = 8) -> ChatRequest:
    """Summarise turns older than ``keep_last``, drop assistant turns older than ``drop_after``."""
    listed = list(numbered(request))
    turns = [(i, n, m) for i, n, m in listed if m.role != "system"]
    if len(turns) <= keep_last:
        return request
    latest_user = max((k for k, (_, _, m) in enumerate(turns) if m.role == "user"), default=-1)
    whole = {n for _, n, m in listed if m.role == "system"}
    whole |= {n for k, (_, n, _) in enumerate(turns) if len(turns) - k <= keep_last}
    whole |= {turns[latest_user][1]} if latest_user >= 0 else set()
    plan = _Plan(parse_refs(table_text(request, REFS)), whole)
    plan.scan(request)
    messages = list(request.messages)
    renumber: dict[int, int] = {}
    dropped: set[int] = set()
    for k, (index, number, message) in enumerate(turns):
        if number in whole:
            continue
        age = len(turns) - k
        if message.role == "assistant" and age > drop_after and _droppable(plan, number, message):
            dropped.add(index)
        else:
            messages[index] = replace(message, parts=_summarize_parts(plan, number, message))
    for new, (_, number, _) in enumerate((t for t in listed if t[0] not in dropped), start=1):
        renumber[number] = new
    result = replace(request, messages=tuple(m for i, m in enumerate(messages) if i not in dropped))
    return _renumber_refs(result, plan, renumber)


def _renumber_refs(request: ChatRequest, plan: _Plan, renumber: dict[int, int]) -> ChatRequest:
    if not plan.entries:
        return request
    kept = [
        replace(e, message=renumber[e.message])
        for e in plan.entries.values()
        if e.message in renumber and (e.message in plan.whole or (e.message, e.id) in plan.keep)
    ]
    if not kept:
        return remove_table(request, REFS)
    return put_table(request, REFS, render_refs(kept))
