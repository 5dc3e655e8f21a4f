"""The per-request context that flows through the pipeline stages."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from meterline.auth import ApiKey
from meterline.catalog import ModelInfo, PicoUSD, cost
from meterline.errors import GatewayError, ProviderError
from meterline.types import ChatRequest, ChatResponse, Principal, Usage

if TYPE_CHECKING:
    from meterline.accounting.ledger import Reservation
    from meterline.routing.classifier import Classification

__all__ = ["Completion", "Outcome", "RequestContext", "Route", "new_request_id"]

log = logging.getLogger("meterline.pipeline")

Completion = Callable[["RequestContext", "Outcome"], None]


def new_request_id() -> str:
    """32 hex digits: the time in milliseconds (12), then 80 random bits (20).

    Time first, so ids sort by when they were made and the request log's key and group indexes
    grow at their end: with random ids every row landed on a random page of both B-trees, which
    cost SQLite 3-5x the CPU per logged row once the table held ~100k rows (NOTES.md row 29).
    """
    return (time.time_ns() // 1_000_000).to_bytes(6, "big").hex() + os.urandom(10).hex()


@dataclass(frozen=True, slots=True)
class Route:
    """Where a request goes and why."""

    provider: str
    model: ModelInfo
    reason: str


@dataclass(slots=True)
class Outcome:
    """What happened, known once the answer (or the stream) has ended."""

    status: Literal["ok", "error", "cancelled"]
    usage: Usage
    cost: PicoUSD = 0
    http_status: int = 200
    error: str | None = None
    finish_reason: str | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    refused: bool = False  # the gateway's own error: no model was asked
    upstream_down: bool = False  # the model's provider failed (429, 5xx, timeout, connection)


@dataclass(slots=True)
class RequestContext:
    request: ChatRequest
    surface: str
    headers: Mapping[str, str] = field(default_factory=dict)
    request_id: str = field(default_factory=new_request_id)
    principal: Principal = field(default_factory=Principal)
    metadata: dict[str, str] = field(default_factory=dict)
    route: Route | None = None
    key: ApiKey | None = None
    budget_remaining: int | None = None
    answer: ChatResponse | None = None
    cache_hit: bool = False
    cache_similarity: float | None = None  # set by a semantic cache hit
    tokens_before: int | None = None
    tokens_after: int | None = None
    compression: dict[str, int] | None = None
    guard: dict[str, Any] | None = None  # what the guard stage found (pipeline.guard)
    classification: Classification | None = None
    group_id: str | None = None
    attempt: int = 1
    experiment: tuple[str, str] | None = None
    success: bool | None = None
    reservation: Reservation | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)
    created_at: float = field(default_factory=time.time)
    first_token_at: float | None = None
    outcome: Outcome | None = None
    _completions: list[Completion] = field(default_factory=list)

    @property
    def model_requested(self) -> str:
        return self.request.model

    def elapsed_ms(self, until: float | None = None) -> float:
        return ((until or time.perf_counter()) - self.started) * 1000

    def on_complete(self, callback: Completion) -> None:
        """Run ``callback`` once the request has ended, whichever way it ended."""
        self._completions.append(callback)

    def complete(
        self,
        status: Literal["ok", "error", "cancelled"],
        usage: Usage,
        *,
        error: GatewayError | None = None,
        finish_reason: str | None = None,
    ) -> Outcome:
        """Record the outcome (cost included) and run the completion callbacks, once."""
        if self.outcome is not None:
            return self.outcome
        priced = self.route is not None and not self.cache_hit  # a cache hit costs nothing
        price_cost = cost(usage, self.route.model.price) if priced and self.route else 0
        self.outcome = Outcome(
            status=status,
            usage=usage,
            cost=price_cost,
            http_status=error.status if error is not None else 200,
            error=error.message if error is not None else None,
            finish_reason=finish_reason,
            latency_ms=self.elapsed_ms(),
            ttft_ms=self.elapsed_ms(self.first_token_at) if self.first_token_at else None,
            refused=error is not None and not isinstance(error, ProviderError),
            upstream_down=isinstance(error, ProviderError) and error.retryable,
        )
        for callback in reversed(self._completions):
            try:
                callback(self, self.outcome)
            except Exception:  # noqa: BLE001 - one failing observer must not hide the others
                log.exception("completion callback %r failed", callback)
        return self.outcome
