"""Measured success of each model per (task type, complexity band), for the router.

Kept in memory and updated as answers are judged; rebuilt at start-up from the request log
(one indexed, grouped query over the last ``window_days``). A model that fails three times in
a row is cooling down for ``cooldown`` seconds, so it gets no routed traffic meanwhile.
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

__all__ = ["Record", "RouteStats", "wilson_lower_bound"]

_Z = 1.96  # 95% confidence


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


class RouteStats:
    """Records keep the last ``window`` judged answers per (task, band, model), so a model that
    degrades or recovers is noticed within a few hundred requests."""

    def __init__(self, cooldown: float = 300.0, failures_to_cool: int = 3, window: int = 300,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.cooldown = cooldown
        self.failures_to_cool = failures_to_cool
        self.window = window
        self.clock = clock
        self._records: dict[tuple[str, str, str], Record] = defaultdict(Record)
        self._streak: dict[str, int] = defaultdict(int)
        self._cool_until: dict[str, float] = {}

    def record(self, task: str, band: str, model: str, success: bool) -> None:
        self._records[(task, band, model)].push(success, self.window)
        if success:
            self._streak[model] = 0
            return
        self._streak[model] += 1
        if self._streak[model] >= self.failures_to_cool:
            self._cool_until[model] = self.clock() + self.cooldown
            self._streak[model] = 0

    def amend(self, task: str, band: str, model: str, was: bool | None, now: bool) -> None:
        """Change one recorded outcome (feedback overruling the heuristics)."""
        entry = self._records[(task, band, model)]
        if was is None:
            entry.push(now, self.window)
        elif was != now:
            entry.flip(was, now)

    def get(self, task: str, band: str, model: str) -> Record:
        return self._records.get((task, band, model), Record())

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
