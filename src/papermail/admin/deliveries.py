"""The delivery ledger as the admin sees it: periods, counts by status, and the rows needing a look."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail.admin import AdminError
from papermail.config import Settings
from papermail.db import session_scope
from papermail.db.models import Delivery, DeliveryStatus, Digest, Subscriber

# What did not go out and won't without an admin: resend picks these up by default.
UNDELIVERED_STATUSES = (DeliveryStatus.FAILED, DeliveryStatus.EXHAUSTED, DeliveryStatus.UNCERTAIN)
# Still on their way: a worker has them or will take them.
IN_FLIGHT_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)
IN_CHUNK = 1000  # ids per IN (...) query, well inside every database's parameter limit
POLL_SECONDS = 0.5


def latest_period_key(session: Session) -> str | None:
    """The period of the most recently planned digest, or None before the first one."""
    query = sa.select(Digest.period_key).order_by(Digest.created_at.desc(), Digest.id.desc()).limit(1)
    return session.scalar(query)


def is_planned(session: Session, period_key: str) -> bool:
    """Whether a digest was ever planned for this period."""
    return session.scalar(sa.select(Digest.id).where(Digest.period_key == period_key)) is not None


def status_counts(session: Session, period_keys: Sequence[str]) -> dict[str, int]:
    """Deliveries of these periods by status, every status listed (zeros included), ledger order."""
    query = (
        sa.select(Delivery.status, sa.func.count())
        .where(Delivery.period_key.in_(period_keys))
        .group_by(Delivery.status)
    )
    found = {status.value: count for status, count in session.execute(query)}
    return {status.value: found.get(status.value, 0) for status in DeliveryStatus}


@dataclass(frozen=True)
class DeliveryRow:
    """One delivery with its subscriber's address, for listings."""

    delivery_id: int
    subscriber_id: int
    email: str
    period_key: str
    status: str
    attempts: int
    last_smtp_code: int | None
    last_smtp_reply: str | None
    skip_reason: str | None
    message_id: str | None
    sent_at: datetime | None
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _row_query() -> sa.Select:
    return sa.select(
        Delivery.id,
        Delivery.subscriber_id,
        Subscriber.email,
        Delivery.period_key,
        Delivery.status,
        Delivery.attempts,
        Delivery.last_smtp_code,
        Delivery.last_smtp_reply,
        Delivery.skip_reason,
        Delivery.message_id,
        Delivery.sent_at,
        Delivery.updated_at,
    ).join(Subscriber, Subscriber.id == Delivery.subscriber_id)


def _rows(session: Session, query: sa.Select) -> list[DeliveryRow]:
    return [DeliveryRow(*row[:4], row[4].value, *row[5:]) for row in session.execute(query)]


def deliveries_with_status(
    session: Session, period_key: str, statuses: Sequence[DeliveryStatus]
) -> list[DeliveryRow]:
    """This period's deliveries in these statuses, by address."""
    query = _row_query().where(Delivery.period_key == period_key, Delivery.status.in_(statuses))
    return _rows(session, query.order_by(Subscriber.email))


def delivery_row(session: Session, delivery_id: int) -> DeliveryRow:
    """One delivery as a listing row."""
    [row] = _rows(session, _row_query().where(Delivery.id == delivery_id))
    return row


def subscriber_delivery(session: Session, subscriber_id: int, period_key: str | None) -> DeliveryRow | None:
    """A subscriber's delivery for a period, or their latest one when ``period_key`` is None."""
    query = _row_query().where(Delivery.subscriber_id == subscriber_id)
    if period_key is not None:
        query = query.where(Delivery.period_key == period_key)
    query = query.order_by(Delivery.scheduled_for.desc(), Delivery.id.desc()).limit(1)
    found = _rows(session, query)
    return found[0] if found else None


@dataclass(frozen=True)
class PeriodStatus:
    """A period at a glance: counts by status, the undelivered rows, and whether sending is paused."""

    period_key: str
    counts: dict[str, int]
    undelivered: list[DeliveryRow]
    paused_at: datetime | None
    pause_reason: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def period_status(session: Session, period_key: str) -> PeriodStatus:
    """Everything ``papermail digest status`` shows for one period."""
    digest = session.scalar(sa.select(Digest).where(Digest.period_key == period_key))
    return PeriodStatus(
        period_key=period_key,
        counts=status_counts(session, [period_key]),
        undelivered=deliveries_with_status(session, period_key, UNDELIVERED_STATUSES),
        paused_at=digest.paused_at if digest else None,
        pause_reason=digest.pause_reason if digest else None,
    )


def periods_of(session: Session, delivery_ids: Sequence[int]) -> set[str]:
    """The period keys these deliveries belong to."""
    keys: set[str] = set()
    for start in range(0, len(delivery_ids), IN_CHUNK):
        chunk = delivery_ids[start : start + IN_CHUNK]
        keys.update(session.scalars(sa.select(Delivery.period_key).where(Delivery.id.in_(chunk)).distinct()))
    return keys


def pending_ids(session: Session, period_keys: Sequence[str]) -> list[int]:
    """The deliveries of these periods still waiting for a worker (to queue them again, harmlessly)."""
    query = sa.select(Delivery.id).where(
        Delivery.period_key.in_(period_keys), Delivery.status == DeliveryStatus.PENDING
    )
    return list(session.scalars(query.order_by(Delivery.id)))


def paused_periods(session: Session, period_keys: Sequence[str]) -> dict[str, str]:
    """Those of these periods whose sending the circuit breaker paused, with the reason."""
    query = sa.select(Digest.period_key, Digest.pause_reason).where(
        Digest.period_key.in_(period_keys), Digest.paused_at.is_not(None)
    )
    return {key: reason or "" for key, reason in session.execute(query)}


class PeriodPaused(AdminError):
    """Sending of a period was paused while we waited for it."""


def wait_until_drained(
    settings: Settings,
    period_keys: Sequence[str],
    *,
    timeout: float,
    on_progress: Callable[[dict[str, int]], None],
    poll_seconds: float = POLL_SECONDS,
) -> dict[str, int] | None:
    """Poll until no delivery of these periods is pending or sending; None if ``timeout`` ran out.

    Rows waiting to retry count as drained: their next attempt may be hours away.
    """
    deadline = time.monotonic() + timeout
    while True:
        with session_scope(settings) as session:
            counts = status_counts(session, period_keys)
            paused = paused_periods(session, period_keys)
        on_progress(counts)
        if paused:
            key, reason = next(iter(paused.items()))
            raise PeriodPaused(
                f"sending of {key} was paused ({reason}); fix the cause, then: "
                f"papermail digest resume --period {key}"
            )
        if not any(counts[status.value] for status in IN_FLIGHT_STATUSES):
            return counts
        if time.monotonic() >= deadline:
            return None
        time.sleep(poll_seconds)
