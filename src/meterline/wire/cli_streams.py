"""Coding-agent CLIs as upstreams, the pure part: argv, prompt flattening, and each CLI's
NDJSON output lines → :class:`ChatChunk`. Headless, these CLIs take one prompt, so a
conversation is flattened with role labels (``User: …``); a system prompt is Claude's
``--system-prompt`` and a ``System:`` section heading the prompt for the others. A prompt over
:data:`STDIN_THRESHOLD` bytes goes on stdin (one argv string is capped at 128 KiB on Linux).

* Claude Code: ``claude -p --output-format stream-json --verbose [--model M] [--system-prompt
  S] -- PROMPT`` (stdin: no PROMPT). Lines ``system``, ``assistant`` (Anthropic message),
  ``user``, final ``result`` (``is_error``, ``usage``). Streaming requests add
  ``--include-partial-messages``: ``stream_event`` lines (Anthropic SSE events) then carry
  token deltas, and the ``assistant`` messages repeating them are skipped.
* Codex: ``codex exec --json --skip-git-repo-check [-m M] -- PROMPT`` (stdin: ``-``). Lines
  ``thread.started``, ``turn.started``, ``item.completed`` (``agent_message``, ``reasoning``),
  ``turn.completed`` (``usage``), ``turn.failed``, ``error``.
* Gemini CLI: ``gemini --output-format stream-json [-m M] --prompt=PROMPT`` (stdin: no
  ``--prompt``). Lines ``init``, ``message`` (assistant deltas), ``tool_use``, ``tool_result``,
  ``error`` (``severity``), final ``result`` (``status``, ``stats``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from meterline.types import (
    ChatChunk,
    ChatRequest,
    ImagePart,
    Message,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    Usage,
)

__all__ = [
    "STDIN_THRESHOLD",
    "ClaudeStream",
    "CliFailure",
    "CodexStream",
    "GeminiStream",
    "Invocation",
    "StreamParser",
    "claude_invocation",
    "codex_invocation",
    "flatten_prompt",
    "gemini_invocation",
    "parse_line",
    "system_prompt",
]

STDIN_THRESHOLD = 100 * 1024
"""Prompts longer than this many UTF-8 bytes are written to the CLI's stdin."""

DEFAULT_MODEL = "default"
"""The model name that means: pass no model flag, let the CLI pick its own default."""

_LABELS = {"user": "User", "assistant": "Assistant"}


class CliFailure(Exception):
    """The CLI reported a failure in its own output (``is_error``, ``turn.failed``…)."""


@dataclass(frozen=True, slots=True)
class Invocation:
    """The arguments after the binary, and the bytes to write to stdin (``None``: no stdin)."""

    args: tuple[str, ...]
    stdin: bytes | None = None


def _part_text(part: object) -> str:
    if isinstance(part, TextPart):
        return part.text
    if isinstance(part, ToolCallPart):
        return f"[tool call {part.id}: {part.name}({part.arguments})]"
    if isinstance(part, ToolResultPart):
        return part.text
    if isinstance(part, ImagePart):
        return f"[image: {part.url}]" if part.url else "[image omitted]"
    return ""


def _body(message: Message) -> str:
    return "\n".join(t for t in (_part_text(p) for p in message.parts) if t)


def _label(message: Message) -> str:
    if message.role == "tool":
        ids = [p.tool_call_id for p in message.parts if isinstance(p, ToolResultPart)]
        return f"Tool result ({ids[0]})" if ids else "Tool result"
    return _LABELS[message.role]


def system_prompt(messages: tuple[Message, ...]) -> str:
    """The text of every system message, joined by blank lines."""
    return "\n\n".join(_body(m) for m in messages if m.role == "system" and _body(m))


def flatten_prompt(messages: tuple[Message, ...], *, inline_system: bool) -> str:
    """One prompt for a whole conversation. A lone user message is passed as it is; anything
    longer gets role labels (``System:``, ``User:``, ``Assistant:``, ``Tool result (id):``)."""
    turns = [m for m in messages if m.role != "system"]
    system = system_prompt(messages) if inline_system else ""
    if not system and len(turns) == 1 and turns[0].role == "user":
        return _body(turns[0])
    sections = [f"System: {system}"] if system else []
    sections += [f"{_label(m)}: {_body(m)}" for m in turns]
    return "\n\n".join(sections)


def _fits_argv(text: str) -> bool:
    return len(text.encode()) <= STDIN_THRESHOLD


def _model_args(flag: str, request: ChatRequest) -> list[str]:
    model = request.model.strip()
    return [] if model in ("", DEFAULT_MODEL) else [flag, model]


def claude_invocation(request: ChatRequest) -> Invocation:
    """``claude -p``; the system prompt goes in ``--system-prompt`` unless it is too long."""
    args = ["-p", "--output-format", "stream-json", "--verbose"]
    if request.stream:
        args.append("--include-partial-messages")
    args += _model_args("--model", request)
    system = system_prompt(request.messages)
    flag_fits = _fits_argv(system)
    if system and flag_fits:
        args += ["--system-prompt", system]
    prompt = flatten_prompt(request.messages, inline_system=not flag_fits)
    if _fits_argv(prompt):
        return Invocation((*args, "--", prompt))
    return Invocation(tuple(args), prompt.encode())


def codex_invocation(request: ChatRequest) -> Invocation:
    """``codex exec --json``; a long prompt is read from stdin via the ``-`` argument."""
    args = ["exec", "--json", "--skip-git-repo-check", *_model_args("-m", request)]
    prompt = flatten_prompt(request.messages, inline_system=True)
    if _fits_argv(prompt):
        return Invocation((*args, "--", prompt))
    return Invocation((*args, "-"), prompt.encode())


def gemini_invocation(request: ChatRequest) -> Invocation:
    """``gemini --prompt=…``; without ``--prompt`` it reads the prompt from piped stdin."""
    args = ["--output-format", "stream-json", *_model_args("-m", request)]
    prompt = flatten_prompt(request.messages, inline_system=True)
    if _fits_argv(prompt):
        return Invocation((*args, f"--prompt={prompt}"))
    return Invocation(tuple(args), prompt.encode())


def parse_line(line: bytes) -> dict[str, Any] | None:
    """One NDJSON line as an object; blank lines and non-JSON noise give ``None``."""
    line = line.strip()
    if not line.startswith(b"{"):
        return None
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return event if isinstance(event, dict) else None


def _int(raw: dict[str, Any], key: str) -> int:
    value = raw.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _message(raw: object, fallback: str) -> str:
    if isinstance(raw, dict):
        raw = raw.get("message")
    return raw if isinstance(raw, str) and raw else fallback


class StreamParser(Protocol):
    """Turns one CLI's events into chunks; ``done`` once the CLI reported success."""

    done: bool
    error: str | None

    def feed(self, event: dict[str, Any]) -> list[ChatChunk]: ...

    def finish(self) -> list[ChatChunk]: ...


@dataclass
class _Parser:
    """Shared state: the reported usage, success, and the last non-fatal error message."""

    usage: Usage | None = None
    done: bool = False
    error: str | None = None

    def finish(self) -> list[ChatChunk]:
        """The closing chunks after a clean exit; a remembered error without success fails."""
        if not self.done and self.error:
            raise CliFailure(self.error)
        tail = [ChatChunk(finish_reason="stop")]
        return tail + ([ChatChunk(usage=self.usage)] if self.usage else [])


def _anthropic_delta(event: object) -> list[ChatChunk]:
    if not isinstance(event, dict) or event.get("type") != "content_block_delta":
        return []
    delta = event.get("delta") or {}
    if delta.get("type") == "text_delta" and delta.get("text"):
        return [ChatChunk(text=str(delta["text"]))]
    if delta.get("type") == "thinking_delta" and delta.get("thinking"):
        return [ChatChunk(thinking=str(delta["thinking"]))]
    return []


def _anthropic_blocks(message: object) -> list[ChatChunk]:
    blocks = message.get("content") if isinstance(message, dict) else None
    chunks: list[ChatChunk] = []
    for block in blocks if isinstance(blocks, list) else []:
        if block.get("type") == "text" and block.get("text"):
            chunks.append(ChatChunk(text=str(block["text"])))
        elif block.get("type") == "thinking" and block.get("thinking"):
            chunks.append(ChatChunk(thinking=str(block["thinking"])))
    return chunks


def claude_usage(raw: object) -> Usage | None:
    """Anthropic usage; ``input_tokens`` here counts cache reads and writes too."""
    if not isinstance(raw, dict):
        return None
    read, write = _int(raw, "cache_read_input_tokens"), _int(raw, "cache_creation_input_tokens")
    return Usage(
        input_tokens=_int(raw, "input_tokens") + read + write,
        output_tokens=_int(raw, "output_tokens"),
        cached_tokens=read,
        cache_write_tokens=write,
    )


@dataclass
class ClaudeStream(_Parser):
    """Claude Code ``stream-json``; sub-agent lines (``parent_tool_use_id``) are internal."""

    partial: bool = False

    def feed(self, event: dict[str, Any]) -> list[ChatChunk]:
        kind = event.get("type")
        if event.get("parent_tool_use_id"):
            return []
        if kind == "stream_event":
            self.partial = True
            return _anthropic_delta(event.get("event"))
        if kind == "assistant" and not self.partial:
            return _anthropic_blocks(event.get("message"))
        if kind == "result":
            if event.get("is_error") or str(event.get("subtype", "")).startswith("error"):
                errors = event.get("errors")
                detail = "; ".join(map(str, errors)) if isinstance(errors, list) else ""
                raise CliFailure(_message(event.get("result"), detail or str(event.get("subtype"))))
            self.usage, self.done = claude_usage(event.get("usage")), True
        return []


@dataclass
class CodexStream(_Parser):
    """``codex exec --json``: whole agent messages; an ``error`` only fails an unfinished turn."""

    said: int = 0

    def _item(self, item: object) -> list[ChatChunk]:
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            return []
        if item.get("type") == "reasoning":
            return [ChatChunk(thinking=item["text"])]
        if item.get("type") != "agent_message":
            return []
        self.said += 1
        return [ChatChunk(text=("\n\n" if self.said > 1 else "") + item["text"])]

    def feed(self, event: dict[str, Any]) -> list[ChatChunk]:
        kind = event.get("type")
        if kind == "item.completed":
            return self._item(event.get("item"))
        if kind == "turn.completed":
            raw = event.get("usage") or {}
            self.done = True
            self.usage = Usage(
                input_tokens=_int(raw, "input_tokens"),
                output_tokens=_int(raw, "output_tokens"),
                cached_tokens=_int(raw, "cached_input_tokens"),
            )
        elif kind == "turn.failed":
            raise CliFailure(_message(event.get("error"), self.error or "the turn failed"))
        elif kind == "error":
            self.error = _message(event, "unknown error")
        return []


def gemini_usage(stats: object) -> Usage | None:
    """Gemini ``stats``; tokens beyond input + output (thoughts) count as reasoning output."""
    if not isinstance(stats, dict):
        return None
    prompt, output = _int(stats, "input_tokens"), _int(stats, "output_tokens")
    extra = max(0, _int(stats, "total_tokens") - prompt - output)
    return Usage(
        input_tokens=prompt,
        output_tokens=output + extra,
        cached_tokens=_int(stats, "cached"),
        reasoning_tokens=extra,
    )


@dataclass
class GeminiStream(_Parser):
    """Gemini CLI ``stream-json``; warnings are ignored, ``result`` decides the outcome."""

    def feed(self, event: dict[str, Any]) -> list[ChatChunk]:
        kind = event.get("type")
        if kind == "message" and event.get("role") == "assistant":
            content = event.get("content")
            return [ChatChunk(text=content)] if isinstance(content, str) and content else []
        if kind == "error" and event.get("severity") == "error":
            self.error = _message(event, "unknown error")
        elif kind == "result":
            if event.get("status") == "error":
                raise CliFailure(_message(event.get("error"), self.error or "the run failed"))
            self.usage, self.done = gemini_usage(event.get("stats")), True
        return []
