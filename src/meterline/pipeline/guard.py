"""Guard stage: credentials and take-over phrases in a request's text, found before anything is
sent, cached or counted with it (``guard.secrets``, ``guard.injection``).

Secrets: ``redact`` (default) puts ``[redacted <kind>]`` in their place in the request that goes
on; ``block`` refuses the request (400, ``secret_detected``); ``flag`` only records them.
Injection: ``flag`` (default) records the phrase; ``block`` refuses (400, ``prompt_injection``).
What was found goes on the log row (``guard``) and in ``x-meterline-guard`` — kinds and the
phrase, never a secret itself. The text read is every text part and tool result of every
message (system prompts included); images and opaque content (documents) are not read.

A conversation's history comes again with every turn, so a long text is scanned once: its
findings are kept by a digest of the text (a bounded number of them, oldest dropped first).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import OrderedDict

from meterline.errors import InvalidRequest
from meterline.guard import find_injection, find_secrets, redact
from meterline.pipeline.context import RequestContext
from meterline.settings import GuardSettings
from meterline.types import ContentPart, Message, TextPart, ToolResultPart

__all__ = ["GuardStage"]

_REMEMBER_FROM = 1024  # characters: shorter texts are scanned each time (a few µs)
_REMEMBERED = 8192  # texts whose findings are kept

Findings = tuple[tuple[tuple[str, int, int], ...], str | None]  # secrets found, injection


class GuardStage:
    def __init__(self, settings: GuardSettings) -> None:
        self.settings = settings
        self._seen: OrderedDict[bytes, Findings] = OrderedDict()

    async def __call__(self, ctx: RequestContext) -> None:
        s = self.settings
        if s.secrets == "off" and s.injection == "off":
            return None
        kinds: dict[str, int] = {}
        phrase: str | None = None
        for where, message in enumerate(ctx.request.messages):
            for text in _texts(message):
                secrets, said = self._scan(text)
                phrase = phrase or said
                if not secrets:
                    continue
                if s.secrets == "block":
                    named = ", ".join(sorted({kind for kind, _, _ in secrets}))
                    raise InvalidRequest(
                        f"messages[{where}] holds what looks like a credential ({named}); "
                        "remove it and send the request again (this gateway refuses to "
                        "forward credentials)",
                        code="secret_detected",
                    )
                for kind, _, _ in secrets:
                    kinds[kind] = kinds.get(kind, 0) + 1
        if phrase is not None and s.injection == "block":
            raise InvalidRequest(
                f"the request holds a prompt-injection phrase ({phrase!r})", code="prompt_injection"
            )
        if kinds or phrase:
            self._record(ctx, kinds, phrase)
        if kinds and s.secrets == "redact":
            messages = tuple(self._redacted(m) for m in ctx.request.messages)
            ctx.request = dataclasses.replace(ctx.request, messages=messages)
        return None

    def _redacted(self, message: Message) -> Message:
        parts: list[ContentPart] = []
        for part in message.parts:
            if isinstance(part, TextPart):
                part = self._redacted_text(part)
            elif isinstance(part, ToolResultPart):
                content = tuple(
                    self._redacted_text(p) if isinstance(p, TextPart) else p for p in part.content
                )
                part = dataclasses.replace(part, content=content)
            parts.append(part)
        return dataclasses.replace(message, parts=tuple(parts))

    def _redacted_text(self, part: TextPart) -> TextPart:
        secrets = self._scan(part.text)[0]
        return dataclasses.replace(part, text=redact(part.text, list(secrets))) if secrets else part

    def _scan(self, text: str) -> Findings:
        if len(text) < _REMEMBER_FROM:
            return self._look(text)
        digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        found = self._seen.get(digest)
        if found is None:
            found = self._seen[digest] = self._look(text)
            if len(self._seen) > _REMEMBERED:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(digest)
        return found

    def _look(self, text: str) -> Findings:
        s = self.settings
        secrets = tuple(find_secrets(text)) if s.secrets != "off" else ()
        return secrets, find_injection(text) if s.injection != "off" else None

    def _record(self, ctx: RequestContext, kinds: dict[str, int], phrase: str | None) -> None:
        s = self.settings
        ctx.guard = {"secrets": kinds, "secrets_action": s.secrets} if kinds else {}
        done = {"redact": "redacted", "flag": "flagged"}
        notes = [f"secrets {done[s.secrets]}: {', '.join(sorted(kinds))}"] if kinds else []
        if phrase is not None:
            ctx.guard |= {"injection": phrase, "injection_action": s.injection}
            notes.append(f"injection {done[s.injection]}")
        ctx.response_headers["x-meterline-guard"] = "; ".join(notes)


def _texts(message: Message) -> list[str]:
    """The texts the guard reads in ``message``: its text parts and its tool results' text."""
    texts = []
    for part in message.parts:
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, ToolResultPart):
            texts += [p.text for p in part.content if isinstance(p, TextPart)]
    return texts
