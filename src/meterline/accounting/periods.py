"""Calendar budget periods (daily, weekly from Monday, monthly) in a configured time zone."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
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
    label: str = field(init=False)  # a stable name, used in counter keys (``daily:2026-11-21``)
    _end_ts: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Computed once: every request asks several rules for their window's label and time left.
        object.__setattr__(self, "label", f"{self.period}:{self.start.date().isoformat()}")
        object.__setattr__(self, "_end_ts", self.end.timestamp())

    def seconds_left(self, now: dt.datetime) -> float:
        return max(0.0, self._end_ts - now.timestamp())


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
