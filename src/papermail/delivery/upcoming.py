"""Who is due next and when: what ``digest send`` says when nothing is due right now."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail.db.models import Subscriber, SubscriberStatus
from papermail.delivery.period import latest_period, next_period, schedule_of

READ_CHUNK = 1000


@dataclass(frozen=True)
class NextDue:
    """The earliest upcoming send time, how many subscribers it covers, and the period they are in now."""

    subscribers: int
    send_at: datetime
    current_period: str


def next_due(session: Session, now: datetime) -> NextDue | None:
    """The next send time of any active subscriber, or None when nobody is active."""
    at_times: Counter[datetime] = Counter()
    current: dict[datetime, Counter[str]] = {}
    query = sa.select(Subscriber).where(Subscriber.status == SubscriberStatus.ACTIVE)
    for subscriber in session.scalars(query.execution_options(yield_per=READ_CHUNK)):
        schedule = schedule_of(subscriber)
        period = latest_period(schedule, now)
        send_at = next_period(schedule, period).send_at
        at_times[send_at] += 1
        current.setdefault(send_at, Counter())[period.key] += 1
    if not at_times:
        return None
    earliest = min(at_times)
    return NextDue(at_times[earliest], earliest, current[earliest].most_common(1)[0][0])


def in_words(delta: timedelta) -> str:
    """A rough, human span: "in 2 days", "in 5 hours", "in 12 minutes"."""
    minutes = max(1, round(delta.total_seconds() / 60))
    for unit, size in (("day", 1440), ("hour", 60), ("minute", 1)):
        if minutes >= size:
            count = round(minutes / size)
            return f"in {count} {unit}{'s' if count != 1 else ''}"
    return "now"


def nobody_due_message(session: Session, now: datetime) -> str:
    """Nothing is due now: who is due next and when, and how to send this period's digest at once."""
    upcoming = next_due(session, now)
    if upcoming is None:
        return (
            "nothing to send: there are no active subscribers; add yourself with "
            "`papermail subscribers add you@example.org --confirmed`"
        )
    which = "this week's" if "-W" in upcoming.current_period else "this period's"
    people = "subscriber is" if upcoming.subscribers == 1 else "subscribers are"
    return (
        f"nothing to send now: {upcoming.subscribers:,} {people} due "
        f"{upcoming.send_at:%a %-d %b %H:%M} UTC ({in_words(upcoming.send_at - now)}); "
        f"--period {upcoming.current_period} sends {which} now"
    )
