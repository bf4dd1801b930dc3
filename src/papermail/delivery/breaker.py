"""The circuit breaker: pause a period's sending after many consecutive failures, and resume it.

Each worker process counts its consecutive failed SMTP transactions. A refused recipient doesn't
count (that is about one address, not the relay), and any success resets the count. At
``PAPERMAIL_BREAKER_THRESHOLD`` the worker pauses the digests it is sending (``Digest.paused_at``),
hands its unsent rows back, and stops; no worker claims a row of a paused digest. Resuming only
re-queues rows that are still pending or due for a retry, so a sent row is never sent again.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail import clock
from papermail.db import audit
from papermail.db.models import Delivery, DeliveryStatus, Digest


class CircuitBreaker:
    """Consecutive failures seen by this process; ``tripped`` once they reach the threshold."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.failures = 0
        self.last_failure = ""

    def succeeded(self) -> None:
        self.failures = 0

    def failed(self, reason: str) -> None:
        self.failures += 1
        self.last_failure = reason

    @property
    def tripped(self) -> bool:
        return self.failures >= self.threshold

    def reset(self) -> None:
        self.failures = 0


_breakers: dict[int, CircuitBreaker] = {}


def process_breaker(threshold: int) -> CircuitBreaker:
    """This process's breaker, kept across batches so a streak spanning two batches still counts."""
    if threshold not in _breakers:
        _breakers[threshold] = CircuitBreaker(threshold)
    return _breakers[threshold]


def pause_digests(session: Session, digest_ids: Iterable[int], reason: str) -> list[int]:
    """Pause these digests (those not already paused); return the ones this call paused."""
    statement = (
        sa.update(Digest)
        .where(Digest.id.in_(list(digest_ids)), Digest.paused_at.is_(None))
        .values(paused_at=clock.now(), pause_reason=reason[:1000])
        .returning(Digest.id)
        .execution_options(synchronize_session=False)
    )
    paused = list(session.scalars(statement))
    for digest_id in paused:
        audit.record(session, "system", "digest.pause", reason=reason[:500], digest_id=digest_id)
    return paused


def resume_digest(session: Session, period_key: str, *, actor: str) -> list[int]:
    """Unpause a period's digest; return its pending and due-retry delivery ids to enqueue again."""
    now = clock.now()
    # The write comes first, so on SQLite this transaction holds the write lock before it reads.
    resumed = session.execute(
        sa.update(Digest)
        .where(Digest.period_key == period_key, Digest.paused_at.is_not(None))
        .values(paused_at=None, pause_reason=None)
        .returning(Digest.id)
        .execution_options(synchronize_session=False)
    ).first()
    digest_id = session.scalar(sa.select(Digest.id).where(Digest.period_key == period_key))
    if digest_id is None:
        raise LookupError(f"no digest planned for period {period_key}")
    if resumed is not None:
        audit.record(session, actor, "digest.resume", digest_id=digest_id)
    query = sa.select(Delivery.id).where(
        Delivery.digest_id == digest_id,
        sa.or_(
            Delivery.status == DeliveryStatus.PENDING,
            sa.and_(Delivery.status == DeliveryStatus.RETRY, Delivery.next_attempt_at <= now),
        ),
    )
    return list(session.scalars(query.order_by(Delivery.id)))
