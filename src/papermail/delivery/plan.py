"""Planning: insert each due subscriber's delivery row for the period, with its papers frozen, once.

Planning is idempotent. Rows are inserted with "ON CONFLICT DO NOTHING" against the unique
(subscriber_id, period_key) constraint, so a second planner (beat firing twice, two beat processes,
an admin running ``digest plan``) inserts nothing and returns nothing to send. Subscribers are read a
chunk at a time, so memory stays flat however many there are.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail import task_names
from papermail.celery_app import enqueue_after_commit
from papermail.config import Settings, get_settings
from papermail.db.inserts import insert_ignoring_conflicts, insert_many_returning
from papermail.db.models import Delivery, DeliveryStatus, Digest, Frequency, Subscriber, SubscriberStatus
from papermail.digest.period import Period, frequency_of_key, latest_period, period_for_key, schedule_of
from papermail.digest.select import RunSelection, Selection, select_for_subscribers
from papermail.subscribers.core import mailable_ids
from papermail.trending import latest_run, window_for

log = logging.getLogger(__name__)

# Subscribers read, selected for and inserted per round trip: big enough to amortise the queries,
# small enough that a chunk's ORM objects and parameters stay a few megabytes.
PLAN_CHUNK = 1000
LATE_SKIP = "skip"


@dataclass(frozen=True)
class _Due:
    subscriber: Subscriber
    period: Period
    late_by: timedelta | None  # set when the period is past the late limit


def plan(session: Session, settings: Settings, *, now: datetime, period_key: str | None = None) -> list[int]:
    """Insert the missing delivery rows due at ``now`` (or all of ``period_key``); return new ids to send."""
    return [i for chunk in plan_in_chunks(session, settings, now=now, period_key=period_key) for i in chunk]


def plan_and_queue(
    session: Session,
    settings: Settings,
    *,
    now: datetime,
    period_key: str | None = None,
    queue: bool = True,
    on_chunk: Callable[[int], None] | None = None,
) -> list[int]:
    """:func:`plan`; with ``queue``, each chunk is committed and its sends queued as it is planned.

    Without ``queue`` nothing is committed: the caller commits, and queues what it chooses.
    """
    new_ids: list[int] = []
    for ids in plan_in_chunks(session, settings, now=now, period_key=period_key):
        if queue:
            enqueue_sends(session, ids, settings=settings)
            # Commit per chunk: sending starts while the rest is still being planned.
            session.commit()
        new_ids += ids
        if on_chunk is not None:
            on_chunk(len(ids))
    return new_ids


def plan_in_chunks(
    session: Session, settings: Settings, *, now: datetime, period_key: str | None = None
) -> Iterator[list[int]]:
    """:func:`plan` one chunk of subscribers at a time; the caller may commit and enqueue between chunks.

    Without ``period_key``, each subscriber's most recent period is planned once its send time has
    passed in their timezone. With it, that period is planned for every eligible subscriber of its
    frequency, whatever their send day and hour.
    """
    frequency = frequency_of_key(period_key) if period_key else None
    pins = _DigestPins(session, now)
    for rows in _active_subscribers(session, frequency):
        eligible = mailable_ids(session, [subscriber for subscriber, _ in rows])
        due = [
            item
            for subscriber, latest_planned in rows
            if subscriber.id in eligible
            and (item := _due(settings, subscriber, latest_planned, now, period_key)) is not None
        ]
        due = [item for item in due if pins.can_pin(item.period.key)]
        if period_key is not None:
            # A re-run of an explicit period: skip everyone already planned before selecting.
            # (Scheduled planning needs no query for it: _due already skipped them.)
            due = _not_yet_planned(session, due)
        yield _insert_deliveries(session, settings, due, pins, now)


def _active_subscribers(
    session: Session, frequency: Frequency | None
) -> Iterator[list[tuple[Subscriber, datetime | None]]]:
    """Active subscribers in id order, a chunk at a time, each with their latest planned send time."""
    after_id = 0
    while True:
        query = (
            sa.select(Subscriber)
            .where(Subscriber.status == SubscriberStatus.ACTIVE, Subscriber.id > after_id)
            .order_by(Subscriber.id)
            .limit(PLAN_CHUNK)
        )
        if frequency is not None:
            query = query.where(Subscriber.frequency == frequency)
        subscribers = list(session.scalars(query))
        if not subscribers:
            return
        # One grouped query over the chunk's id range, not a subquery per subscriber: with
        # statistics taken while deliveries was empty (a new install), PostgreSQL ran that subquery
        # as a scan of the whole table, which this pass grows, for every subscriber.
        last_id = subscribers[-1].id
        latest = dict(
            session.execute(
                sa.select(Delivery.subscriber_id, sa.func.max(Delivery.scheduled_for))
                .where(Delivery.subscriber_id > after_id, Delivery.subscriber_id <= last_id)
                .group_by(Delivery.subscriber_id)
            ).all()
        )
        yield [(subscriber, latest.get(subscriber.id)) for subscriber in subscribers]
        after_id = last_id


def _due(
    settings: Settings,
    subscriber: Subscriber,
    latest_planned: datetime | None,
    now: datetime,
    period_key: str | None,
) -> _Due | None:
    schedule = schedule_of(subscriber)
    if period_key is not None:
        return _Due(subscriber, period_for_key(schedule, period_key), None)
    period = latest_period(schedule, now)
    # A period at or before one already planned is never planned: moving one's send day or
    # timezone back across a week boundary must not produce a second digest that week.
    if latest_planned is not None and latest_planned >= period.send_at:
        return None
    # Someone who subscribed after this period's send time starts with the next one.
    if period.send_at < (subscriber.confirmed_at or subscriber.created_at):
        return None
    # Lateness counts from the send time, or from a preference change that made the period due.
    due_since = max(period.send_at, subscriber.preferences_changed_at or period.send_at)
    late_by = now - due_since
    limit = timedelta(hours=settings.late_limit_hours)
    return _Due(subscriber, period, late_by if late_by > limit else None)


def _not_yet_planned(session: Session, due: Sequence[_Due]) -> list[_Due]:
    """Drop the subscribers whose row for that period exists (saves their selection work)."""
    if not due:
        return []
    query = sa.select(Delivery.subscriber_id, Delivery.period_key).where(
        Delivery.subscriber_id.in_([d.subscriber.id for d in due]),
        Delivery.period_key.in_({d.period.key for d in due}),
    )
    planned = {(s, k) for s, k in session.execute(query)}
    return [d for d in due if (d.subscriber.id, d.period.key) not in planned]


class _DigestPins:
    """Each period's Digest row, created on first planning with the scoring run it then pins.

    The run is the latest of the period's own window (weekly digests rank by the 7d run, daily ones
    by the 24h run), so a resend reads the very same ranking.
    """

    def __init__(self, session: Session, now: datetime) -> None:
        self.session, self.now = session, now
        self._by_key: dict[str, Digest] = {}
        self._run_ids: dict[str, int | None] = {}
        self._pinnable: dict[str, bool] = {}
        # One per pinned run for the whole pass: the ranking is read, and its text model fitted, once.
        self._runs: dict[int, RunSelection] = {}

    def run(self, run_id: int) -> RunSelection:
        """The pass's selection state for scoring run ``run_id``."""
        if run_id not in self._runs:
            self._runs[run_id] = RunSelection(run_id)
        return self._runs[run_id]

    def _run_id(self, key: str) -> int | None:
        window = window_for(frequency_of_key(key))
        if window not in self._run_ids:
            run = latest_run(self.session, window)
            self._run_ids[window] = run.id if run else None
            if run is None:
                log.warning("no finished %s scoring run yet: %s digests wait for one", window, window)
        return self._run_ids[window]

    def can_pin(self, key: str) -> bool:
        """True if the period's digest already pins a run or its window has a finished run to pin."""
        if key not in self._pinnable:
            pinned = sa.select(Digest.scoring_run_id).where(Digest.period_key == key)
            self._pinnable[key] = self._run_id(key) is not None or self.session.scalar(pinned) is not None
        return self._pinnable[key]

    def get(self, key: str) -> Digest:
        if key not in self._by_key:
            run_id = self._run_id(key)
            self.session.connection().execute(
                insert_ignoring_conflicts(self.session, Digest, ["period_key"]),
                [{"period_key": key, "scoring_run_id": run_id, "created_at": self.now}],
            )
            digest = self.session.scalars(sa.select(Digest).where(Digest.period_key == key)).one()
            if digest.scoring_run_id is None:
                digest.scoring_run_id = run_id
            self._by_key[key] = digest
        return self._by_key[key]


def _insert_deliveries(
    session: Session, settings: Settings, due: Sequence[_Due], pins: _DigestPins, now: datetime
) -> list[int]:
    if not due:
        return []
    rows: list[dict[str, Any]] = []
    by_key: dict[str, list[_Due]] = defaultdict(list)
    for item in due:
        if item.late_by is not None and settings.late_policy == LATE_SKIP:
            hours = item.late_by.total_seconds() / 3600
            reason = (
                f"late: planned {hours:.0f} h after its send time (limit {settings.late_limit_hours:g} h)"
            )
            rows.append(_row(pins.get(item.period.key), item, now, Selection([], reason)))
        else:
            by_key[item.period.key].append(item)
    for key, items in by_key.items():
        digest = pins.get(key)
        assert digest.scoring_run_id is not None
        selections = select_for_subscribers(
            session,
            digest.scoring_run_id,
            [i.subscriber for i in items],
            size=settings.digest_size,
            run=pins.run(digest.scoring_run_id),
        )
        for item in items:
            rows.append(_row(digest, item, now, selections[item.subscriber.id]))
    inserted = insert_many_returning(
        session, Delivery, ["subscriber_id", "period_key"], rows, [Delivery.id, Delivery.status]
    )
    return sorted(row_id for row_id, status in inserted if status == DeliveryStatus.PENDING)


def _row(digest: Digest, item: _Due, now: datetime, selection: Selection) -> dict:
    return {
        "digest_id": digest.id,
        "subscriber_id": item.subscriber.id,
        "period_key": item.period.key,
        "status": DeliveryStatus.SKIPPED if selection.skip_reason else DeliveryStatus.PENDING,
        "paper_ids": list(selection.paper_ids),
        "reasons": list(selection.reasons) or None,
        "skip_reason": selection.skip_reason,
        "scheduled_for": item.period.send_at,
        "planned_at": now,
        "updated_at": now,
    }


def enqueue_sends(session: Session, delivery_ids: Iterable[int], *, settings: Settings | None = None) -> int:
    """Enqueue ``papermail.send_delivery_batch`` for the ids, in batches, once ``session`` commits."""
    batch_size = (settings or get_settings()).send_batch_size
    ids = list(delivery_ids)
    for start in range(0, len(ids), batch_size):
        enqueue_after_commit(session, task_names.SEND_DELIVERY_BATCH, ids[start : start + batch_size])
    return (len(ids) + batch_size - 1) // batch_size
