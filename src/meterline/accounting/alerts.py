"""Alerts: written once per threshold per window (a unique key in the ``alerts`` table makes
that hold across replicas) and POSTed to an optional webhook by the replica that wrote them."""

from __future__ import annotations

import datetime as dt
import logging

import aiohttp
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from meterline.store.schema import alerts, circuit_breakers

__all__ = ["AlertSink"]

log = logging.getLogger("meterline.alerts")


class AlertSink:
    def __init__(
        self, engine: AsyncEngine, session: aiohttp.ClientSession, webhook: str | None
    ) -> None:
        self.engine = engine
        self.session = session
        self.webhook = webhook
        self._seen: set[str] = set()

    async def alert(
        self, kind: str, subject: str, window: str, threshold: int, message: str
    ) -> bool:
        """Record the alert unless it was already raised; ``True`` if this call raised it."""
        dedupe = f"{kind}|{subject}|{window}|{threshold}"
        if dedupe in self._seen:
            return False
        self._seen.add(dedupe)
        now = dt.datetime.now(dt.UTC)
        try:
            async with self.engine.begin() as conn:
                await conn.execute(alerts.insert().values(
                    created_at=now, kind=kind, subject=subject, window=window,
                    threshold=threshold, message=message, dedupe_key=dedupe,
                ))  # fmt: skip
        except IntegrityError:
            return False  # another replica raised it first
        log.warning("alert: %s", message)
        if self.webhook:
            await self._deliver(dedupe, kind, subject, window, threshold, message, now)
        return True

    async def _deliver(self, dedupe: str, kind: str, subject: str, window: str, threshold: int,
                       message: str, at: dt.datetime) -> None:  # fmt: skip
        assert self.webhook is not None
        payload = {"kind": kind, "subject": subject, "window": window, "threshold": threshold,
                   "message": message, "created_at": at.isoformat()}  # fmt: skip
        try:
            async with self.session.post(
                self.webhook, json=payload, timeout=aiohttp.ClientTimeout(total=5)
            ) as resp:
                if resp.status >= 300:
                    log.warning("alert webhook answered %s", resp.status)
                    return
            async with self.engine.begin() as conn:
                await conn.execute(
                    update(alerts).where(alerts.c.dedupe_key == dedupe).values(delivered=True)
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("alert webhook failed: %s", exc)

    async def trip(self, name: str, window: str, reason: str) -> None:
        """Mark a breaker open for ``window`` in the ``circuit_breaker`` table."""
        now = dt.datetime.now(dt.UTC)
        values = {"state": "open", "window": window, "reason": reason, "updated_at": now}
        async with self.engine.begin() as conn:
            done = await conn.execute(
                update(circuit_breakers).where(circuit_breakers.c.name == name).values(**values)
            )
            if not done.rowcount:
                try:
                    async with conn.begin_nested():
                        await conn.execute(circuit_breakers.insert().values(name=name, **values))
                except IntegrityError:
                    pass

    async def breaker_rows(self) -> dict[str, dict[str, str | None]]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(circuit_breakers))).all()
        return {r.name: {"state": r.state, "window": r.window, "reason": r.reason} for r in rows}

    async def recent(self, limit: int = 50) -> list[dict[str, object]]:
        query = select(alerts).order_by(alerts.c.id.desc()).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            {"created_at": r.created_at.isoformat(), "kind": r.kind, "subject": r.subject,
             "window": r.window, "threshold": r.threshold, "message": r.message,
             "delivered": r.delivered}
            for r in rows
        ]  # fmt: skip
