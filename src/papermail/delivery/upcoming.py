"""Who is due next and when: what ``digest send`` says when nothing is due right now."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail.db.models import Delivery, Subscriber, SubscriberStatus
from papermail.digest.period import latest_period, next_period, schedule_of

READ_CHUNK = 1000


@dataclass(frozen=True)
class NextDue:
    """The earliest upcoming send time, how many subscribers it covers, and the period they are in now.

    ``current_period`` is their most recent period whose send time has passed; ``next_period`` the
    one due at ``send_at``; ``current_planned`` whether the current one was planned for all of them.
    """

    subscribers: int
    send_at: datetime
    current_period: str
    next_period: str
    current_planned: bool


def next_due(session: Session, now: datetime) -> NextDue | None:
    """The next send time of any active subscriber, or None when nobody is active."""
    at_times: Counter[datetime] = Counter()
    current: dict[datetime, Counter[tuple[str, str]]] = {}
    ids: dict[datetime, list[int]] = {}
    query = sa.select(Subscriber).where(Subscriber.status == SubscriberStatus.ACTIVE)
    for subscriber in session.scalars(query.execution_options(yield_per=READ_CHUNK)):
        schedule = schedule_of(subscriber)
        period = latest_period(schedule, now)
        upcoming = next_period(schedule, period)
        at_times[upcoming.send_at] += 1
        current.setdefault(upcoming.send_at, Counter())[period.key, upcoming.key] += 1
        ids.setdefault(upcoming.send_at, []).append(subscriber.id)
    if not at_times:
        return None
    earliest = min(at_times)
    period_key, next_key = current[earliest].most_common(1)[0][0]
    planned = _planned_count(session, period_key, ids[earliest])
    return NextDue(at_times[earliest], earliest, period_key, next_key, planned == len(ids[earliest]))


def _planned_count(session: Session, period_key: str, subscriber_ids: list[int]) -> int:
    """How many of these subscribers have a delivery in ``period_key``."""
    planned = 0
    for start in range(0, len(subscriber_ids), READ_CHUNK):
        chunk = subscriber_ids[start : start + READ_CHUNK]
        planned += session.scalar(
            sa.select(sa.func.count())
            .select_from(Delivery)
            .where(Delivery.period_key == period_key, Delivery.subscriber_id.in_(chunk))
        )
    return planned


def next_send_at(subscriber: Subscriber, now: datetime) -> datetime:
    """When ``subscriber``'s next digest is due (UTC): the send time after their most recent one."""
    schedule = schedule_of(subscriber)
    return next_period(schedule, latest_period(schedule, now)).send_at


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
    people = "subscriber is" if upcoming.subscribers == 1 else "subscribers are"
    due = f"{upcoming.send_at:%a %-d %b %H:%M} UTC ({in_words(upcoming.send_at - now)})"
    if upcoming.current_planned:
        return (
            f"nothing to send now: {upcoming.current_period} went out; the next, {upcoming.next_period}, "
            f"is due {due} for {upcoming.subscribers:,} {people.split()[0]}"
        )
    which = "this week's" if "-W" in upcoming.current_period else "this period's"
    return (
        f"nothing to send now: {upcoming.subscribers:,} {people} due {due}; "
        f"--period {upcoming.current_period} sends {which} now"
    )
