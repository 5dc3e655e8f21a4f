"""The one place upstream HTTP happens: the shared connection pool
(:class:`~meterline.providers.upstream.UpstreamPool`), timeouts and retries.

Retries cover 429, 5xx (configurable) and connection errors, with exponential backoff and full
jitter, honouring the upstream's ``retry-after`` when it is within ``backoff_max``. A stream is
retried only before its first byte: once a chunk has reached the client there is no going back.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from meterline.errors import (
    ProviderError,
    UpstreamConnectionError,
    UpstreamMalformed,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from meterline.providers.upstream import (
    Response,
    UpstreamClosed,
    UpstreamPool,
    UpstreamUndecodable,
)
from meterline.settings import RetrySettings, TimeoutSettings
from meterline.types import ChatChunk, LastBatch, RelayBatch
from meterline.wire.sse import SSEDecoder, SSEEvent

__all__ = ["ErrorDecoder", "HttpClient", "UpstreamCall"]

ErrorDecoder = Callable[[int, Any, dict[str, str], str], ProviderError]
R = TypeVar("R")


def _same(data: bytes, ended: bool) -> bytes:
    return data


def _nothing() -> None:
    return None


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None


def _json_or_text(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"error": {"message": raw.decode("utf-8", "replace")[:500] or "empty body"}}


class HttpClient:
    def __init__(
        self,
        pool: UpstreamPool,
        provider: str,
        retry: RetrySettings,
        timeout: TimeoutSettings,
        decode_error: ErrorDecoder,
    ) -> None:
        self.pool = pool
        self.provider = provider
        self.retry = retry
        self.timeout = timeout
        self.decode_error = decode_error

    async def send(self, call: UpstreamCall) -> bytes:
        """Send ``call`` and return the body of a 2xx answer (with retries)."""
        response = await self.open(call)
        try:
            return await response.read()
        except (ConnectionError, TimeoutError) as exc:
            raise self._transport_error(exc) from None
        finally:
            response.release()

    async def open(self, call: UpstreamCall) -> Response:
        """Send ``call`` and return the open 2xx response (headers read, body not yet)."""
        attempt = 1
        while True:
            try:
                return await self._attempt(call)
            except ProviderError as exc:
                delay = self._retry_delay(exc, attempt)
                if delay is None:
                    raise
            attempt += 1
            await asyncio.sleep(delay)

    def stream(self, call: UpstreamCall) -> AsyncGenerator[bytes, None]:
        """The body of a 2xx answer as it arrives (with retries before the first byte).

        The first bytes come under the first-byte timeout; a connection that breaks midway is an
        :class:`UpstreamConnectionError`. A body read to its end returns its connection to the
        pool; one abandoned (client gone, a decoding error) is closed, which cancels the upstream
        generation. Iterate it inside ``contextlib.aclosing`` so that happens at once.
        """
        return self._read(call, _same, _nothing)

    def decoded(
        self, call: UpstreamCall, decode: Callable[[SSEEvent], list[ChatChunk]]
    ) -> AsyncGenerator[list[ChatChunk], None]:
        """What ``decode`` makes of each server-sent event of a streamed answer (see
        :meth:`stream`), one list per read that made anything, including from a last event
        the upstream left unterminated (see :data:`meterline.types.ChunkStream`). The batch of
        the read that ended the answer is a :class:`~meterline.types.LastBatch`."""
        decoder = SSEDecoder()

        def batch(events: list[SSEEvent]) -> list[ChatChunk]:
            return [item for event in events for item in decode(event)]

        def each(data: bytes, ended: bool) -> list[ChatChunk] | None:
            if not ended:
                return batch(decoder.feed(data)) or None
            last = LastBatch(batch(decoder.feed(data) + decoder.close()))
            return last or None

        return self._read(call, each, lambda: batch(decoder.close()) or None)

    def relayed(
        self, call: UpstreamCall, decode: Callable[[SSEEvent], tuple[list[ChatChunk], bytes]]
    ) -> AsyncGenerator[RelayBatch, None]:
        """As :meth:`decoded`, for an answer relayed to the client: ``decode`` gives each
        event's chunks and the event's bytes as the client gets them, and each batch carries
        those bytes (:class:`~meterline.types.RelayBatch`). The bytes of a read that made no
        chunk (a ``message_start``, a ``ping``) wait for the next batch, as a batch is never
        empty until the answer's end."""
        decoder = SSEDecoder()
        held = b""

        def batch(events: list[SSEEvent], ended: bool) -> RelayBatch | None:
            nonlocal held
            chunks: list[ChatChunk] = []
            frames = [held]
            for event in events:
                made, framed = decode(event)
                chunks += made
                frames.append(framed)
            held = b"".join(frames)
            if not chunks and not (ended and held):
                return None
            out, held = RelayBatch(chunks, held, last=ended), b""
            return out

        def each(data: bytes, ended: bool) -> RelayBatch | None:
            events = decoder.feed(data)
            return batch(events + decoder.close() if ended else events, ended)

        return self._read(call, each, lambda: batch(decoder.close(), True))

    async def _read(
        self,
        call: UpstreamCall,
        each: Callable[[bytes, bool], R | None],
        last: Callable[[], R | None],
    ) -> AsyncGenerator[R, None]:
        """What ``each`` makes of every piece of the answer as it arrives (``None``: nothing to
        pass on; the flag: the answer has ended with this piece), then what ``last`` makes once
        the answer has ended. One generator for both :meth:`stream` and :meth:`decoded`, so a
        decoded stream has no layer of its own."""
        response = await self.open(call)
        finished = False
        try:
            while (data := await response.piece()) is not None:
                if (item := each(data, response.ended)) is not None:
                    yield item
            finished = True
        except (TimeoutError, ConnectionError) as exc:
            raise self._broken_off(exc) from None
        finally:
            if finished:
                response.release()
            else:
                response.close()
        if (item := last()) is not None:
            yield item

    def _broken_off(self, exc: TimeoutError | ConnectionError) -> ProviderError:
        if isinstance(exc, TimeoutError):
            return UpstreamTimeout(f"{self.provider} {exc}", provider=self.provider)
        return UpstreamConnectionError(
            f"{self.provider} broke off the stream: {exc}", provider=self.provider
        )

    def json(self, raw: bytes | str) -> Any:
        """``raw`` parsed; an upstream that sends something else is unavailable, not a bug here."""
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamUnavailable(
                f"{self.provider} answered with a body that is not JSON", provider=self.provider
            ) from None

    async def _attempt(self, call: UpstreamCall) -> Response:
        timeout = self.timeout
        try:
            response = await self.pool.request(
                call.method, call.url, call.headers, call.body,
                connect=timeout.connect, first_byte=timeout.first_byte, total=timeout.total,
            )  # fmt: skip
        except (TimeoutError, OSError, ValueError) as exc:
            raise self._transport_error(exc) from None
        if response.status < 400:
            return response
        headers = response.headers
        try:
            raw = await response.read()
        except (ConnectionError, TimeoutError):
            raw = b""
        finally:
            response.release()
        raise self.decode_error(response.status, _json_or_text(raw), headers, self.provider)

    def _retry_delay(self, error: ProviderError, attempt: int) -> float | None:
        if attempt >= self.retry.max_attempts or not error.retryable:
            return None
        status = error.upstream_status
        if status is not None and status not in self.retry.retry_on_status:
            return None
        if isinstance(error, (UpstreamTimeout, UpstreamMalformed)):
            return None
        if error.retry_after is not None:
            return error.retry_after if error.retry_after <= self.retry.backoff_max else None
        ceiling = min(self.retry.backoff_max, self.retry.backoff_initial * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _transport_error(self, exc: BaseException) -> ProviderError:
        if isinstance(exc, TimeoutError):
            return UpstreamTimeout(f"{self.provider} timed out: {exc}", provider=self.provider)
        if isinstance(exc, UpstreamUndecodable):  # reached, and would answer the same again
            return UpstreamMalformed(f"{self.provider} answered with an {exc}",
                                     provider=self.provider)  # fmt: skip
        if isinstance(exc, UpstreamClosed):  # reached, but the answer was cut off or garbled
            return UpstreamConnectionError(f"{self.provider} failed to answer: {exc}",
                                           provider=self.provider)  # fmt: skip
        return UpstreamConnectionError(
            f"could not reach {self.provider}: {exc.__class__.__name__}: {exc}",
            provider=self.provider,
        )
