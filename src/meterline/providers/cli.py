"""Coding-agent CLIs as providers: Claude Code (``claude-cli``), Codex (``codex-cli``) and
Gemini CLI (``gemini-cli``), each request answered by one headless subprocess.

The CLIs use their own login (the gateway's environment is inherited). A per-provider
semaphore bounds concurrent processes (``max_concurrency``); waiting for a slot counts toward
the total timeout. A process is killed (SIGTERM to its process group, SIGKILL after a grace
period) when the stream is closed early, times out or is cancelled, and is always reaped.
What differs per CLI lives in a :class:`CliSpec` (see :mod:`meterline.wire.cli_streams`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import ClassVar, TypeVar

from meterline.errors import ProviderError, UpstreamTimeout, UpstreamUnavailable
from meterline.providers.base import ProviderDeps, ProviderFactory
from meterline.settings import ProviderSettings
from meterline.tokens import count_messages, count_text
from meterline.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    ContentPart,
    FinishReason,
    Message,
    TextPart,
    ThinkingPart,
    Usage,
)
from meterline.wire import cli_streams as streams

__all__ = [
    "CLAUDE",
    "CLI_PROVIDER_TYPES",
    "CODEX",
    "GEMINI",
    "ClaudeCliProvider",
    "CliNotFound",
    "CliProvider",
    "CliSpec",
    "CodexCliProvider",
    "GeminiCliProvider",
]

T = TypeVar("T")

LINE_LIMIT = 16 * 1024 * 1024
"""Longest NDJSON line read from a CLI (one Claude ``assistant`` line holds a whole message)."""
STDERR_TAIL = 500
"""How much of stderr (the end of it) an exit-code error quotes."""


@dataclass(frozen=True, slots=True)
class CliSpec:
    """What differs between coding CLIs: binary, default models, argv, and output parser."""

    type: str
    binary: str
    default_models: tuple[str, ...]
    invocation: Callable[[ChatRequest], streams.Invocation]
    parser: Callable[[], streams.StreamParser]


CLAUDE = CliSpec(
    "claude-cli",
    "claude",
    ("sonnet", "opus", "haiku"),
    streams.claude_invocation,
    streams.ClaudeStream,
)
CODEX = CliSpec(
    "codex-cli", "codex", ("gpt-5-codex", "gpt-5"), streams.codex_invocation, streams.CodexStream
)
GEMINI = CliSpec(
    "gemini-cli",
    "gemini",
    ("gemini-2.5-pro", "gemini-2.5-flash"),
    streams.gemini_invocation,
    streams.GeminiStream,
)


class CliNotFound(UpstreamUnavailable):
    """The CLI's binary is not installed (not on PATH, or the configured path is missing)."""

    status = 503
    code = "cli_not_found"
    retryable = False


def _signal_group(proc: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    """Signal the CLI and everything it started (it leads its own session), unless reaped."""
    if proc.returncode is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    except OSError:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)


class _Child:
    """One running CLI: its process, a reader keeping the tail of its stderr, its clean-up."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self._stderr = bytearray()
        self._drain = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        assert self.proc.stderr is not None
        while data := await self.proc.stderr.read(65536):
            self._stderr += data
            del self._stderr[: -4 * STDERR_TAIL]

    async def stderr_tail(self) -> str:
        await asyncio.wait({self._drain}, timeout=1.0)
        return self._stderr.decode(errors="replace").strip()[-STDERR_TAIL:]

    def send(self, data: bytes | None) -> None:
        """Write the prompt to stdin and close it; the transport buffers what the pipe cannot
        take yet and closes once it has flushed, so this never blocks."""
        if data is not None and self.proc.stdin is not None:
            self.proc.stdin.write(data)
            self.proc.stdin.close()

    async def readline(self) -> bytes:
        assert self.proc.stdout is not None
        try:
            return await self.proc.stdout.readline()
        except ValueError:
            raise ProviderError(f"a CLI output line exceeds {LINE_LIMIT} bytes") from None

    async def stop(self, *, kill: bool, grace: float) -> None:
        if kill:
            _signal_group(self.proc, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                _signal_group(self.proc, signal.SIGKILL)
        await self.proc.wait()
        self._drain.cancel()
        await asyncio.gather(self._drain, return_exceptions=True)


class CliProvider:
    """A coding CLI as an upstream; subclasses name their :class:`CliSpec`."""

    spec: ClassVar[CliSpec]
    wire = "cli"
    kill_grace: ClassVar[float] = 2.0

    def __init__(self, settings: ProviderSettings, deps: ProviderDeps) -> None:
        self.name = settings.name
        self.settings = settings
        self.command = settings.command or self.spec.binary
        self.timeout = (settings.timeout or deps.timeout).total
        self._slots = asyncio.Semaphore(max(1, settings.max_concurrency))

    def executable(self) -> str | None:
        """The binary to run: an explicit path if it is executable, else a PATH lookup."""
        if os.sep in self.command:
            path = os.path.expanduser(self.command)
            return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
        return shutil.which(self.command)

    def is_available(self) -> bool:
        """Whether the binary is installed (looked up on every call: PATH may change)."""
        return self.executable() is not None

    def _not_found(self) -> CliNotFound:
        where = "does not exist or is not executable" if os.sep in self.command else "not on PATH"
        return CliNotFound(
            f"{self.name}: the {self.spec.binary} CLI `{self.command}` {where}; install it "
            "or set the provider's `command`",
            provider=self.name,
        )

    async def _within(self, deadline: float, step: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout_at(deadline):
                return await step
        except TimeoutError:
            raise UpstreamTimeout(
                f"{self.name}: the {self.spec.binary} CLI did not answer within {self.timeout:g}s",
                provider=self.name,
            ) from None

    async def _spawn(self, path: str, call: streams.Invocation) -> _Child:
        try:
            proc = await asyncio.create_subprocess_exec(
                path,
                *call.args,
                stdin=asyncio.subprocess.DEVNULL if call.stdin is None else asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=LINE_LIMIT,
                start_new_session=True,
            )
        except (FileNotFoundError, PermissionError):
            raise self._not_found() from None
        return _Child(proc)

    def _guard(self, step: Callable[[], list[ChatChunk]]) -> list[ChatChunk]:
        """Run a parser step; a failure the CLI reported becomes a :class:`ProviderError`."""
        try:
            return step()
        except streams.CliFailure as exc:
            raise self._reported(str(exc)) from None

    def _reported(self, message: str) -> ProviderError:
        return ProviderError(
            f"{self.name}: the {self.spec.binary} CLI reported an error: {message}",
            provider=self.name,
        )

    async def _ending(self, child: _Child, parser: streams.StreamParser) -> list[ChatChunk]:
        code = child.proc.returncode
        if code and not parser.done:
            if parser.error:
                raise self._reported(f"{parser.error} (exit code {code})")
            raise ProviderError(
                f"{self.name}: the {self.spec.binary} CLI exited with code {code}: "
                f"{await child.stderr_tail() or '(no stderr)'}",
                provider=self.name,
            )
        return self._guard(parser.finish)

    async def stream(self, request: ChatRequest) -> AsyncGenerator[list[ChatChunk], None]:
        """Run the CLI and translate its output; closing this kills the process."""
        call = self.spec.invocation(request)
        deadline = asyncio.get_running_loop().time() + self.timeout
        path = self.executable()
        if path is None:
            raise self._not_found()
        await self._within(deadline, self._slots.acquire())
        try:
            child = await self._spawn(path, call)
            finished = False
            try:
                child.send(call.stdin)
                parser = self.spec.parser()
                while line := await self._within(deadline, child.readline()):
                    event = streams.parse_line(line)
                    if event is not None and (chunks := self._guard(partial(parser.feed, event))):
                        yield chunks
                await self._within(deadline, child.proc.wait())
                if chunks := await self._ending(child, parser):
                    yield chunks
                finished = True
            finally:
                # Shielded: a second cancellation must not leave the process unreaped.
                await asyncio.shield(child.stop(kill=not finished, grace=self.kill_grace))
        finally:
            self._slots.release()

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """The whole stream, collected into one response."""
        text: list[str] = []
        thinking: list[str] = []
        usage: Usage | None = None
        finish: FinishReason = "stop"
        async with contextlib.aclosing(self.stream(request)) as reads:
            async for chunks in reads:
                for chunk in chunks:
                    text.append(chunk.text or "")
                    thinking.append(chunk.thinking or "")
                    usage = chunk.usage or usage
                    finish = chunk.finish_reason or finish
        parts: list[ContentPart] = [ThinkingPart("".join(thinking))] if any(thinking) else []
        parts.append(TextPart("".join(text)))
        if usage is None:
            usage = Usage(
                input_tokens=count_messages(request, request.model),
                output_tokens=count_text("".join(text), request.model),
                estimated=True,
            )
        return ChatResponse(
            id=f"cli-{uuid.uuid4().hex}",
            model=request.model,
            message=Message("assistant", tuple(parts)),
            finish_reason=finish,
            usage=usage,
            created=int(time.time()),
        )

    async def list_models(self) -> list[str]:
        """Configured models, else the CLI's usual ones; none while the CLI is not installed."""
        if not self.is_available():
            return []
        return [m.name for m in self.settings.models] or list(self.spec.default_models)

    async def aclose(self) -> None:
        """Every process belongs to a stream, which reaps it; nothing shared to close."""


class ClaudeCliProvider(CliProvider):
    """Claude Code (``claude -p --output-format stream-json``), type ``claude-cli``."""

    spec = CLAUDE


class CodexCliProvider(CliProvider):
    """OpenAI Codex (``codex exec --json``), type ``codex-cli``."""

    spec = CODEX


class GeminiCliProvider(CliProvider):
    """Gemini CLI (``gemini --output-format stream-json``), type ``gemini-cli``."""

    spec = GEMINI


CLI_PROVIDER_TYPES: Mapping[str, ProviderFactory] = {
    cls.spec.type: cls for cls in (ClaudeCliProvider, CodexCliProvider, GeminiCliProvider)
}
"""The types this module serves, to merge into ``registry.PROVIDER_TYPES``."""
