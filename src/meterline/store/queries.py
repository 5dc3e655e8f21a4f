"""Analytics over the request log, always scoped by tenant when one is given."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from meterline.catalog import to_usd
from meterline.store.schema import requests

__all__ = ["GroupStats", "recent_requests", "usage_stats"]


@dataclass(frozen=True, slots=True)
class GroupStats:
    provider: str | None
    model: str | None
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cost_pusd: int
    avg_latency_ms: float
    p95_latency_ms: float

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 4),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cost_usd": str(to_usd(self.cost_pusd)),
            "avg_latency_ms": round(self.avg_latency_ms, 2),
            "p95_latency_ms": round(self.p95_latency_ms, 2),
        }


def _scoped(query: Select[Any], since: dt.datetime, tenant: str | None) -> Select[Any]:
    query = query.where(requests.c.created_at >= since)
    return query.where(requests.c.tenant == tenant) if tenant is not None else query


async def _p95(engine: AsyncEngine, since: dt.datetime, tenant: str | None,
               provider: str | None, model: str | None, count: int) -> float:  # fmt: skip
    if count == 0:
        return 0.0
    query = _scoped(select(requests.c.latency_ms), since, tenant).where(
        requests.c.provider.is_(None) if provider is None else requests.c.provider == provider,
        requests.c.model.is_(None) if model is None else requests.c.model == model,
    )
    offset = max(0, -(-95 * count // 100) - 1)  # nearest-rank percentile
    query = query.order_by(requests.c.latency_ms).offset(offset).limit(1)
    async with engine.connect() as conn:
        value = (await conn.execute(query)).scalar()
    return float(value or 0.0)


async def usage_stats(
    engine: AsyncEngine, *, days: float, tenant: str | None = None
) -> list[GroupStats]:
    """Per provider and model: requests, errors, tokens, cost, average and p95 latency."""
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    c = requests.c
    query = _scoped(
        select(
            c.provider,
            c.model,
            func.count(),
            func.sum(case((c.status == "error", 1), else_=0)),
            func.sum(c.input_tokens),
            func.sum(c.output_tokens),
            func.sum(c.cached_tokens),
            func.sum(c.reasoning_tokens),
            func.sum(c.cost_pusd),
            func.avg(c.latency_ms),
        ).group_by(c.provider, c.model),
        since,
        tenant,
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    out = []
    for provider, model, n, errors, tin, tout, tcached, treason, cost, avg in rows:
        p95 = await _p95(engine, since, tenant, provider, model, int(n))
        out.append(
            GroupStats(
                provider,
                model,
                int(n),
                int(errors or 0),
                int(tin or 0),
                int(tout or 0),
                int(tcached or 0),
                int(treason or 0),
                int(cost or 0),
                float(avg or 0.0),
                p95,
            )  # fmt: skip
        )
    return sorted(out, key=lambda g: (-g.requests, g.provider or "", g.model or ""))


def _row_json(row: Any) -> dict[str, Any]:
    data = {str(k): v for k, v in row._mapping.items()}
    data["created_at"] = data["created_at"].isoformat()
    data["cost_usd"] = str(to_usd(data.pop("cost_pusd")))
    return data


async def recent_requests(
    engine: AsyncEngine, *, limit: int, offset: int, tenant: str | None = None
) -> list[dict[str, Any]]:
    query = select(requests).order_by(requests.c.created_at.desc()).limit(limit).offset(offset)
    if tenant is not None:
        query = query.where(requests.c.tenant == tenant)
    async with engine.connect() as conn:
        return [_row_json(r) for r in (await conn.execute(query)).all()]
