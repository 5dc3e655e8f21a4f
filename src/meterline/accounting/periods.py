"""Calendar budget periods (daily, weekly from Monday, monthly) in a configured time zone."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

__all__ = ["PERIODS", "Period", "Window", "window"]

Period = Literal["daily", "weekly", "monthly"]
PERIODS: tuple[Period, ...] = ("daily", "weekly", "monthly")


@dataclass(frozen=True, slots=True)
class Window:
    period: Period
    start: dt.datetime
    end: dt.datetime

    @property
    def label(self) -> str:
        """A stable name for this window, used in counter keys (``daily:2026-11-21``)."""
        return f"{self.period}:{self.start.date().isoformat()}"

    def seconds_left(self, now: dt.datetime) -> float:
        return max(0.0, (self.end - now).total_seconds())


def window(period: Period, now: dt.datetime, tz: str = "UTC") -> Window:
    """The calendar window of ``period`` containing ``now`` (an aware datetime)."""
    local = now.astimezone(ZoneInfo(tz))
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        start, end = day, day + dt.timedelta(days=1)
    elif period == "weekly":
        start = day - dt.timedelta(days=day.weekday())
        end = start + dt.timedelta(days=7)
    else:
        start = day.replace(day=1)
        end = (start + dt.timedelta(days=32)).replace(day=1)
    # Re-localise so that DST changes inside the window land on the right wall-clock midnight.
    zone = ZoneInfo(tz)
    start = start.replace(tzinfo=None).replace(tzinfo=zone)
    end = end.replace(tzinfo=None).replace(tzinfo=zone)
    return Window(period, start.astimezone(dt.UTC), end.astimezone(dt.UTC))
