"""Building requests for the compression tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from meterline.types import ChatRequest, ContentPart, Message, TextPart

MODEL = "gpt-4o-mini"


def msg(role: str, *parts: str | ContentPart) -> Message:
    built = tuple(TextPart(p) if isinstance(p, str) else p for p in parts)
    return Message(role, built)  # type: ignore[arg-type]


def chat(*messages: Message) -> ChatRequest:
    return ChatRequest(MODEL, messages)


def texts(request: ChatRequest) -> list[str]:
    return [m.text for m in request.messages]


def stdlib(module: str) -> str:
    """A standard-library module's source: real code nobody here wrote."""
    origin = importlib.util.find_spec(module).origin  # type: ignore[union-attr]
    return Path(str(origin)).read_text(encoding="utf-8")


def _lines(body: str) -> str:
    return body if body.endswith("\n") else body + "\n"


def file_block(path: str, body: str) -> str:
    return f'<file path="{path}">\n{_lines(body)}</file>'


def fence(info: str, body: str) -> str:
    return f"```{info}\n{_lines(body)}```"
