"""The knobs every simulated provider takes, and the failures tests script with them."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Fault", "FaultKind", "SimSettings"]

FaultKind = Literal["ok", "http", "hang", "drop_mid_stream", "no_usage"]  # ok: no fault


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted misbehaviour for the next request."""

    kind: FaultKind = "http"
    status: int = 500
    retry_after: float | None = None
    message: str | None = None


@dataclass(slots=True)
class SimSettings:
    models: tuple[str, ...] = (
        "gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano",
        "gpt-4o", "gpt-4o-mini", "o3", "o4-mini",
    )  # fmt: skip
    api_key: str | None = None
    ttft: float = 0.0
    per_token: float = 0.0
    jitter: float = 0.0
    error_rate: float = 0.0
    stream_usage: bool = True
    served_as: dict[str, str] = field(default_factory=dict)
    """The model name an answer gives for a requested one (e.g. a dated snapshot's)."""
    seed: int = 7
    rng: random.Random = field(default_factory=random.Random)
