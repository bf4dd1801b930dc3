"""A digest's period: its key, how the key reads, and when a subscriber's schedule sends it.

A weekly subscriber's period is the ISO week of their send time on their own calendar
(``2026-W48``), a daily subscriber's the date (``2026-11-26``). The key comes from the local
calendar, never from a UTC instant, so a DST change can move a send by an hour but never into
another period: each period has exactly one send instant, and consecutive instants are days apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from papermail.db.models import Frequency, Subscriber

WEEK_KEY = re.compile(r"(\d{4})-W(\d{2})\Z")
DAY_KEY = re.compile(r"(\d{4})-(\d{2})-(\d{2})\Z")
STEP = {Frequency.WEEKLY: timedelta(days=7), Frequency.DAILY: timedelta(days=1)}
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


@dataclass(frozen=True)
class Schedule:
    """When a subscriber wants their digest: how often, which weekday and hour, in which timezone."""

    frequency: Frequency
    weekday: int  # 0 = Monday; ignored for daily digests
    hour: int
    timezone: str


@dataclass(frozen=True)
class Period:
    """One digest period for one schedule: its key and the UTC instant it is due."""

    key: str
    send_at: datetime


def schedule_of(subscriber: Subscriber) -> Schedule:
    """The schedule a subscriber chose."""
    return Schedule(
        Frequency(subscriber.frequency), subscriber.send_weekday, subscriber.send_hour, subscriber.timezone
    )


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _local_send_date(schedule: Schedule, local_day: date) -> date:
    """The date, in the same period as ``local_day``, on which ``schedule`` sends."""
    if schedule.frequency == Frequency.DAILY:
        return local_day
    return local_day + timedelta(days=schedule.weekday - local_day.weekday())


def key_of(frequency: Frequency, local_day: date) -> str:
    """The period key of a local calendar day: its ISO week, or the date itself."""
    if frequency == Frequency.DAILY:
        return local_day.isoformat()
    year, week, _ = local_day.isocalendar()
    return f"{year}-W{week:02d}"


def _instant(schedule: Schedule, local_day: date) -> datetime:
    # fold=0: a wall time repeated when clocks go back means its first occurrence, and one that
    # doesn't exist when clocks go forward is read with the offset before the change. Either way
    # each local day maps to exactly one instant.
    local = datetime.combine(local_day, time(schedule.hour), tzinfo=_zone(schedule.timezone))
    return local.astimezone(UTC)


def latest_period(schedule: Schedule, now: datetime) -> Period:
    """The most recent period whose send time is at or before ``now``."""
    local_today = now.astimezone(_zone(schedule.timezone)).date()
    send_day = _local_send_date(schedule, local_today)
    step = STEP[schedule.frequency]
    # Usually this period's send day, else the previous one; stepping further back only matters
    # for zones that skipped a whole calendar day (Samoa, 2011).
    while _instant(schedule, send_day) > now:
        send_day -= step
    return Period(key_of(schedule.frequency, send_day), _instant(schedule, send_day))


def next_period(schedule: Schedule, period: Period) -> Period:
    """The period after ``period`` for the same schedule."""
    send_day = _send_day_of(schedule, period.key) + STEP[schedule.frequency]
    return Period(key_of(schedule.frequency, send_day), _instant(schedule, send_day))


def period_for_key(schedule: Schedule, key: str) -> Period:
    """The period ``key`` for this schedule, with its send instant."""
    return Period(key, _instant(schedule, _send_day_of(schedule, key)))


def _send_day_of(schedule: Schedule, key: str) -> date:
    frequency, first_day = read_key(key)
    if frequency != schedule.frequency:
        raise ValueError(f"period {key} is not a {schedule.frequency.value} period")
    return first_day if frequency == Frequency.DAILY else first_day + timedelta(days=schedule.weekday)


def read_key(key: str) -> tuple[Frequency, date]:
    """What a period key says: weekly and its ISO week's Monday, or daily and its date; else ValueError."""
    if week := WEEK_KEY.match(key):
        try:
            return Frequency.WEEKLY, date.fromisocalendar(int(week[1]), int(week[2]), 1)
        except ValueError:
            raise ValueError(f"period {key} is not a valid ISO week") from None
    if DAY_KEY.match(key):
        try:
            return Frequency.DAILY, date.fromisoformat(key)
        except ValueError:
            raise ValueError(f"period {key} is not a valid date") from None
    raise ValueError(f"period {key!r} is neither an ISO week like 2026-W48 nor a date like 2026-11-26")


def validate_period_key(text: str) -> str:
    """Return ``text`` if it is a period key (``2026-W48`` or ``2026-11-26``); raise ValueError."""
    key = text.strip()
    read_key(key)
    return key


def frequency_of_key(key: str) -> Frequency:
    """Weekly for ``2026-W48``, daily for ``2026-11-26``."""
    return read_key(key.strip())[0]


def describe_period(period_key: str) -> str:
    """``2026-W48`` → ``Week 48, 2026``; ``2026-11-26`` → ``26 November 2026``."""
    frequency, first_day = read_key(period_key)
    if frequency == Frequency.WEEKLY:
        year, week, _ = first_day.isocalendar()
        return f"Week {week}, {year}"
    return f"{first_day.day} {_MONTHS[first_day.month - 1]} {first_day.year}"
