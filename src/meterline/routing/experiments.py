"""A/B experiments: split the traffic of a task type (or of an alias) between a baseline and a
challenger model, compare them per arm, and optionally promote the challenger once it is better
with confidence.

Significance is a two-proportion z-test on the success rates (one-sided: challenger better);
auto-promotion needs ``MIN_ARM_SAMPLES`` judged answers per arm and p < 0.05.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import secrets
from dataclasses import dataclass

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from meterline.catalog import to_usd
from meterline.store.schema import experiments, requests

__all__ = ["Experiment", "Experiments", "ArmStats", "one_sided_p"]

MIN_ARM_SAMPLES = 50
ALPHA = 0.05


@dataclass(frozen=True, slots=True)
class Experiment:
    id: str
    match: str  # a task type, or a requested model name / alias
    baseline: str  # provider:model
    challenger: str
    weight: float  # share of traffic to the challenger
    auto_promote: bool
    status: str  # running | promoted | stopped


@dataclass(frozen=True, slots=True)
class ArmStats:
    requests: int
    judged: int
    successes: int
    cost_pusd: int
    avg_latency_ms: float

    @property
    def success_rate(self) -> float:
        return self.successes / self.judged if self.judged else 0.0


def one_sided_p(a: ArmStats, b: ArmStats) -> float:
    """P-value that ``b`` succeeds more often than ``a`` only by chance."""
    if not a.judged or not b.judged:
        return 1.0
    pooled = (a.successes + b.successes) / (a.judged + b.judged)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / a.judged + 1 / b.judged))
    if spread == 0:
        return 1.0 if b.success_rate <= a.success_rate else 0.0
    z = (b.success_rate - a.success_rate) / spread
    return 0.5 * math.erfc(z / math.sqrt(2))


class Experiments:
    def __init__(self, engine: AsyncEngine, rng: random.Random | None = None) -> None:
        self.engine = engine
        self.rng = rng or random.Random()
        self._active: list[Experiment] = []

    async def load(self) -> None:
        query = select(experiments).where(experiments.c.status != "stopped")
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        self._active = [Experiment(r.id, r.match, r.baseline, r.challenger, r.weight,
                                   r.auto_promote, r.status) for r in rows]  # fmt: skip

    def match(self, task_type: str | None, requested: str) -> Experiment | None:
        for experiment in self._active:
            if experiment.match in (requested, task_type):
                return experiment
        return None

    def assign(self, experiment: Experiment) -> tuple[str, str]:
        """(arm, provider:model) for one request."""
        if experiment.status == "promoted" or self.rng.random() < experiment.weight:
            return "challenger", experiment.challenger
        return "baseline", experiment.baseline

    async def create(self, match: str, baseline: str, challenger: str, weight: float,
                     auto_promote: bool) -> Experiment:  # fmt: skip
        experiment = Experiment(f"exp_{secrets.token_hex(6)}", match, baseline, challenger,
                                weight, auto_promote, "running")  # fmt: skip
        async with self.engine.begin() as conn:
            await conn.execute(experiments.insert().values(
                id=experiment.id, match=match, baseline=baseline, challenger=challenger,
                weight=weight, auto_promote=auto_promote, status="running",
                created_at=dt.datetime.now(dt.UTC)))  # fmt: skip
        await self.load()
        return experiment

    async def set_status(self, experiment_id: str, status: str) -> bool:
        async with self.engine.begin() as conn:
            done = await conn.execute(update(experiments)
                                      .where(experiments.c.id == experiment_id)
                                      .values(status=status))  # fmt: skip
        await self.load()
        return bool(done.rowcount)

    async def arms(self, experiment_id: str) -> dict[str, ArmStats]:
        c = requests.c
        query = (
            select(c.arm, func.count(), func.count(c.success),
                   func.sum(case((c.success.is_(True), 1), else_=0)),
                   func.sum(c.cost_pusd), func.avg(c.latency_ms))
            .where(c.experiment == experiment_id).group_by(c.arm)
        )  # fmt: skip
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        found = {arm: ArmStats(int(n), int(judged), int(ok or 0), int(cost or 0), float(lat or 0))
                 for arm, n, judged, ok, cost, lat in rows}  # fmt: skip
        empty = ArmStats(0, 0, 0, 0, 0.0)
        return {"baseline": found.get("baseline", empty),
                "challenger": found.get("challenger", empty)}  # fmt: skip

    async def report(self, experiment: Experiment) -> dict[str, object]:
        arms = await self.arms(experiment.id)
        p = one_sided_p(arms["baseline"], arms["challenger"])
        ready = all(a.judged >= MIN_ARM_SAMPLES for a in arms.values())
        better = ready and p < ALPHA
        if better and experiment.auto_promote and experiment.status == "running":
            await self.set_status(experiment.id, "promoted")
            experiment = next((e for e in self._active if e.id == experiment.id), experiment)
        return {
            "id": experiment.id, "match": experiment.match, "baseline": experiment.baseline,
            "challenger": experiment.challenger, "weight": experiment.weight,
            "auto_promote": experiment.auto_promote, "status": experiment.status,
            "arms": {name: {
                "requests": a.requests, "judged": a.judged,
                "success_rate": round(a.success_rate, 4),
                "avg_cost_usd": str(to_usd(a.cost_pusd // a.requests)) if a.requests else "0",
                "avg_latency_ms": round(a.avg_latency_ms, 2)} for name, a in arms.items()},
            "p_value_challenger_better": round(p, 5),
            "challenger_better_with_confidence": better,
        }  # fmt: skip

    async def all(self) -> list[Experiment]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(experiments))).all()
        return [Experiment(r.id, r.match, r.baseline, r.challenger, r.weight, r.auto_promote,
                           r.status) for r in rows]  # fmt: skip
