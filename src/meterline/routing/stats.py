"""Measured success of each model per (task type, complexity band), for the router.

Kept in memory and updated as answers are judged; rebuilt at start-up from the request log
(one indexed, grouped query over the last ``window_days``).

A cell's own record is thin for most models (a few answers, or none), so :meth:`RouteStats.
failure_rate` pools evidence: failure rates are fitted as *model factor × cell rate* over every
record (a model that fails twice as often as the average in one cell tends to do so in the
others), and that fit is the prior a cell's own answers update, worth ``prior_weight`` answers.

A model whose upstream fails three times in a row (errors, timeouts, refused connections: not
answers judged poor, which the rates above account for) is cooling down for ``cooldown``
seconds, so it gets no routed traffic meanwhile.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from meterline.store.schema import requests

__all__ = ["Estimate", "Lengths", "Record", "RouteStats", "wilson_lower_bound"]

_Z = 1.96  # 95% confidence
_BASE_FAILURE = 0.1  # a cell's failure rate before it has a record
_CELL_WEIGHT = 10.0  # answers that ``_BASE_FAILURE`` is worth against a cell's own
_MODEL_WEIGHT = 0.5  # expected failures that an average model factor (1.0) is worth
_FIT_ROUNDS = 5
_REFIT_EVERY = 100  # judged answers between two fits, and at least
_REFIT_SECONDS = 1.0  # this long (a fit over 1,000 records takes ~2 ms)
_LENGTH_MEMORY = 200  # answers the running mean of answer lengths is (at most) worth


def wilson_lower_bound(successes: int, total: int, z: float = _Z) -> float:
    """The lower end of the Wilson score interval: a success rate we can be confident of."""
    if total == 0:
        return 0.0
    p = successes / total
    denominator = 1 + z * z / total
    centre = p + z * z / (2 * total)
    margin = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return (centre - margin) / denominator


@dataclass(slots=True)
class Record:
    """The most recent judged answers (a sliding window), as counts."""

    successes: int = 0
    total: int = 0
    window: deque[bool] = field(default_factory=deque)

    @property
    def rate(self) -> float:
        return self.successes / self.total if self.total else 0.0

    @property
    def lower_bound(self) -> float:
        return wilson_lower_bound(self.successes, self.total)

    def push(self, success: bool, size: int) -> None:
        self.window.append(success)
        self.total += 1
        self.successes += int(success)
        if len(self.window) > size:
            self.successes -= int(self.window.popleft())
            self.total -= 1

    def flip(self, was: bool, now: bool) -> None:
        """Change the most recent outcome that was ``was`` into ``now``."""
        for i in range(len(self.window) - 1, -1, -1):
            if self.window[i] == was:
                self.window[i] = now
                self.successes += 1 if now else -1
                return


@dataclass(frozen=True, slots=True)
class Estimate:
    """A failure rate and the number of answers it is worth (the cell's own plus the prior's)."""

    failure: float
    weight: float

    def optimistic(self, z: float = 2.0) -> float:
        """The failure rate ``z`` standard errors lower: what the model might turn out to be."""
        spread = math.sqrt(self.failure * (1 - self.failure) / self.weight)
        return max(0.0, self.failure - z * spread)


@dataclass(slots=True)
class Lengths:
    """How long answers to a (task, band) cell run: visible answer tokens, and the reasoning
    tokens models that think bill per answer token. Running means that start from a guess
    worth one answer and then follow the most recent ``_LENGTH_MEMORY`` answers or so."""

    output: float = 500.0
    reasoning_per_output: float = 2.0
    answers: int = 0
    thought: int = 0

    def observe(self, output: int, reasoning: int, thinks: bool) -> None:
        self.answers += 1
        self.output += (output - self.output) / min(self.answers + 1, _LENGTH_MEMORY)
        if thinks and output > 0:
            self.thought += 1
            ratio = reasoning / output
            step = min(self.thought + 1, _LENGTH_MEMORY)
            self.reasoning_per_output += (ratio - self.reasoning_per_output) / step


@dataclass(frozen=True, slots=True)
class _Pool:
    model: dict[str, float]  # how often each model fails, relative to the average (1.0)
    cell: dict[tuple[str, str], float]  # how often the average model fails in each cell


def _fit(records: dict[tuple[str, str, str], Record]) -> _Pool:
    """Failure rates as model factor × cell rate, by alternating the two fits a few rounds;
    each shrunk towards its default (1.0, ``_BASE_FAILURE``) so thin evidence stays modest."""
    seen = [(key[:2], key[2], r.total - r.successes, r.total) for key, r in records.items()
            if r.total]  # fmt: skip
    model: dict[str, float] = defaultdict(lambda: 1.0)
    cell: dict[tuple[str, str], float] = {}
    for _ in range(_FIT_ROUNDS):
        failures: dict[tuple[str, str], float] = defaultdict(float)
        exposure: dict[tuple[str, str], float] = defaultdict(float)
        for c, m, failed, total in seen:
            failures[c] += failed
            exposure[c] += model[m] * total
        cell = {c: (failures[c] + _BASE_FAILURE * _CELL_WEIGHT) / (exposure[c] + _CELL_WEIGHT)
                for c in failures}  # fmt: skip
        by_model: dict[str, float] = defaultdict(float)
        model_exposure: dict[str, float] = defaultdict(float)
        for c, m, failed, total in seen:
            by_model[m] += failed
            model_exposure[m] += cell[c] * total
        model = defaultdict(lambda: 1.0, {
            m: (by_model[m] + _MODEL_WEIGHT) / (model_exposure[m] + _MODEL_WEIGHT)
            for m in by_model
        })  # fmt: skip
    return _Pool(dict(model), cell)


class RouteStats:
    """Records keep the last ``window`` judged answers per (task, band, model), so a model that
    degrades or recovers is noticed within a few hundred requests."""

    def __init__(self, cooldown: float = 300.0, failures_to_cool: int = 3, window: int = 300,
                 clock: Callable[[], float] = time.monotonic,
                 prior_weight: float = 100.0) -> None:  # fmt: skip
        self.cooldown = cooldown
        self.failures_to_cool = failures_to_cool
        self.window = window
        self.clock = clock
        self.prior_weight = prior_weight
        self._records: dict[tuple[str, str, str], Record] = defaultdict(Record)
        self._streak: dict[str, int] = defaultdict(int)
        self._cool_until: dict[str, float] = {}
        self._pool: _Pool | None = None
        self._since_fit = 0
        self._fitted_at = 0.0
        self._lengths: dict[tuple[str, str], Lengths] = defaultdict(Lengths)

    def record(self, task: str, band: str, model: str, success: bool,
               upstream_failed: bool = False) -> None:  # fmt: skip
        """One judged answer; ``upstream_failed`` when there was no answer at all (an error,
        a timeout): only those count towards the cool-down streak."""
        self._records[(task, band, model)].push(success, self.window)
        self._since_fit += 1
        if not upstream_failed:
            self._streak[model] = 0
            return
        self._streak[model] += 1
        if self._streak[model] >= self.failures_to_cool:
            self._cool_until[model] = self.clock() + self.cooldown
            self._streak[model] = 0

    def amend(self, task: str, band: str, model: str, was: bool | None, now: bool) -> None:
        """Change one recorded outcome (feedback overruling the heuristics)."""
        entry = self._records[(task, band, model)]
        self._since_fit += 1
        if was is None:
            entry.push(now, self.window)
        elif was != now:
            entry.flip(was, now)

    def get(self, task: str, band: str, model: str) -> Record:
        return self._records.get((task, band, model), Record())

    def observe_usage(self, task: str, band: str, output_tokens: int, reasoning_tokens: int,
                      thinks: bool) -> None:  # fmt: skip
        """An answer's length (``output_tokens`` includes ``reasoning_tokens``)."""
        visible = max(0, output_tokens - reasoning_tokens)
        self._lengths[(task, band)].observe(visible, reasoning_tokens, thinks)

    def lengths(self, task: str, band: str) -> Lengths:
        return self._lengths.get((task, band)) or Lengths()

    def failure_rate(self, task: str, band: str, model: str) -> Estimate:
        """The cell's own answers on top of the pooled prior (refitted after ``_REFIT_EVERY``
        judged answers, at most once every ``_REFIT_SECONDS``)."""
        if self._pool is None or (
            self._since_fit >= _REFIT_EVERY and self.clock() - self._fitted_at >= _REFIT_SECONDS
        ):
            self._pool, self._since_fit, self._fitted_at = _fit(self._records), 0, self.clock()
        prior = self._pool.model.get(model, 1.0) * self._pool.cell.get((task, band), _BASE_FAILURE)
        prior = min(prior, 0.95)
        record = self.get(task, band, model)
        failures = record.total - record.successes + self.prior_weight * prior
        weight = record.total + self.prior_weight
        return Estimate(failures / weight, weight)

    def cooling(self, model: str) -> bool:
        until = self._cool_until.get(model)
        return until is not None and until > self.clock()

    async def rebuild(self, engine: AsyncEngine, window_days: int = 30) -> None:
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=window_days)
        c = requests.c
        band = case((c.complexity < 34, "low"), (c.complexity < 67, "medium"), else_="high")
        query = (
            select(c.task_type, band, c.provider, c.model, func.count(),
                   func.sum(case((c.success.is_(True), 1), else_=0)))
            .where(c.created_at >= since, c.success.is_not(None), c.task_type.is_not(None))
            .group_by(c.task_type, band, c.provider, c.model)
        )  # fmt: skip
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        for task, band_name, provider, model, total, successes in rows:
            record = Record()
            kept = min(int(total), self.window)  # the window's share, in proportion
            wins = round(int(successes or 0) * kept / max(1, int(total)))
            for i in range(kept):
                record.push(i < wins, self.window)
            self._records[(task, band_name, f"{provider}:{model}")] = record
        self._pool = None
