"""User feedback on answers: ``/feedback`` in chat, ``POST /api/feedback``, the dashboard.

A rating (1–5; good = 5, bad = 1) is stored in the ``feedback`` table and on the request's log
row, and overrules the heuristic verdict the router learned from (4–5 success, 1–2 failure).
Requests are found by id, by the first or the last characters of their id, or — with no id —
the caller's most recent request; always within the caller's own tenant. Ids begin with the
time they were made (``pipeline.context.new_request_id``), so their first characters are shared
by the requests of the same minute and their last characters, which are random, are the short
form to give; a short form is looked up among the last :data:`SHORT_ID_DAYS` days' requests.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from meterline.errors import InvalidRequest, ModelNotFound
from meterline.routing.classifier import complexity_band
from meterline.routing.evaluator import from_rating
from meterline.routing.stats import RouteStats
from meterline.store import LogWriter
from meterline.store.schema import feedback, requests

__all__ = ["TASK_ID", "FeedbackResult", "FeedbackService", "parse_command"]

_FULL_ID = 32  # hex digits in a request id
TASK_ID = rf"[0-9a-fA-F]{{4,{_FULL_ID}}}"  # a whole id, or its first or last characters
_COMMAND = re.compile(rf"^/feedback\s+(good|bad|[1-5])(?:\s+({TASK_ID}))?\s*$", re.I)
_WORDS = {"good": 5, "bad": 1}
SHORT_ID_DAYS = 30  # how far back a short id is looked up (a suffix cannot use the id index)
USAGE = "usage: /feedback good|bad|1-5 [taskId]"


def parse_command(text: str) -> tuple[int, str | None]:
    """``/feedback good 3f2a`` → (5, "3f2a"); raises :class:`InvalidRequest` with the usage."""
    match = _COMMAND.match(text.strip())
    if match is None:
        raise InvalidRequest(f"could not read that feedback; {USAGE}", param="messages")
    word, task = match.group(1).lower(), match.group(2)
    return _WORDS.get(word) or int(word), task.lower() if task else None


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    request_id: str
    provider: str | None
    model: str | None
    rating: int


class FeedbackService:
    def __init__(self, engine: AsyncEngine, writer: LogWriter, stats: RouteStats) -> None:
        self.engine = engine
        self.writer = writer
        self.stats = stats

    async def rate(
        self, *, tenant: str | None, key_id: str | None, task: str | None, rating: int,
        source: str, exclude: str | None = None,
    ) -> FeedbackResult:  # fmt: skip
        if not 1 <= rating <= 5:
            raise InvalidRequest("'rating' must be between 1 and 5", param="rating")
        await self.writer.flush()  # the rated request may still be on its way to the log
        row = await self._find(tenant, key_id, task, exclude)
        success = from_rating(rating)
        async with self.engine.begin() as conn:
            await conn.execute(feedback.insert().values(
                request_id=row.id, tenant=row.tenant, rating=rating, source=source,
                created_at=dt.datetime.now(dt.UTC)))  # fmt: skip
            values: dict[str, object] = {"rating": rating}
            if success is not None:
                values["success"] = success
            await conn.execute(update(requests).where(requests.c.id == row.id).values(**values))
        if success is not None and row.task_type and row.model:
            band = complexity_band(row.complexity or 0)
            self.stats.amend(
                row.task_type, band, f"{row.provider}:{row.model}", row.success, success
            )
        return FeedbackResult(row.id, row.provider, row.model, rating)

    async def _find(self, tenant: str | None, key_id: str | None, task: str | None,
                    exclude: str | None) -> Any:  # fmt: skip
        c = requests.c
        query = select(c.id, c.tenant, c.provider, c.model, c.task_type, c.complexity, c.success)
        query = query.where(c.provider.is_not(None), c.provider != "meterline")
        if tenant is not None:
            query = query.where(c.tenant == tenant)
        if exclude is not None:
            query = query.where(c.id != exclude)
        task = task.lower() if task is not None else None
        if task is not None and len(task) >= _FULL_ID:
            query = query.where(c.id == task)
        elif task is not None:
            since = dt.datetime.now(dt.UTC) - dt.timedelta(days=SHORT_ID_DAYS)
            query = query.where(or_(c.id.like(f"{task}%"), c.id.like(f"%{task}")))
            query = query.where(c.created_at >= since)
        elif key_id is not None:
            query = query.where(c.key_id == key_id)
        query = query.order_by(c.created_at.desc()).limit(2 if task else 1)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        if not rows:
            what = f"task {task}" if task else "recent request"
            raise ModelNotFound(f"found no {what} to rate", param="taskId", code="task_not_found")
        if task is not None and len(rows) > 1:
            raise InvalidRequest(f"'{task}' matches several tasks; give more of the id",
                                 param="taskId")  # fmt: skip
        return rows[0]
