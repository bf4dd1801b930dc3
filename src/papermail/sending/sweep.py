"""The sweeper: find deliveries and confirmations that fell between the cracks and put them back.

Both kinds of row follow the same rules (:mod:`papermail.sending.claims`), so the same sweep
settles both:

* A row left ``sending`` past its lease lost its worker. If it was already handed to the relay
  (``attempt_started_at`` set), the relay may have delivered it before the worker died: it becomes
  **uncertain** and is reported, never silently sent again. Otherwise it certainly was not sent: it
  goes back to pending (or retry), with ``lost_claims`` + 1, and is re-queued (the send path sends
  such rows one claim each, so a message that kills its worker can only take itself down). After
  ``PAPERMAIL_MAX_WORKER_DEATHS`` such deaths it is failed.
* A row ``pending`` for longer than ``PAPERMAIL_REQUEUE_AFTER_SECONDS`` since it was last queued (the
  broker lost its message, or Redis was flushed) is queued again, as is a ``retry`` row whose time
  has come. Queuing a row twice is harmless: only one task can claim it. A confirmation whose
  signup could not queue it (the broker was down) is sent this way once the broker is back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail import task_names
from papermail.celery_app import enqueue_after_commit
from papermail.config import Settings
from papermail.db import audit
from papermail.db.models import Confirmation, Delivery, DeliveryStatus, Digest
from papermail.delivery.plan import enqueue_sends
from papermail.sending.claims import CONFIRMATIONS, DELIVERIES, RowKind, waiting_again

log = logging.getLogger(__name__)

SWEEP_CHUNK = 1000


@dataclass
class SweepReport:
    """What one sweep changed and queued."""

    uncertain_ids: list[int] = field(default_factory=list)
    failed_ids: list[int] = field(default_factory=list)  # their workers kept dying
    recovered_ids: list[int] = field(default_factory=list)  # claimed, never handed over: queued again
    requeued_ids: list[int] = field(default_factory=list)  # pending or due retries, queued in batches
    confirmations: SweepReport | None = None  # the same, for confirmation emails

    def counts(self) -> dict[str, int]:
        """The number of rows per outcome, for logs (confirmations' prefixed ``confirmation_``)."""
        counts = {
            "uncertain": len(self.uncertain_ids),
            "failed": len(self.failed_ids),
            "recovered": len(self.recovered_ids),
            "requeued": len(self.requeued_ids),
        }
        if self.confirmations is not None:
            counts.update({f"confirmation_{k}": n for k, n in self.confirmations.counts().items()})
        return counts


def sweep(session: Session, settings: Settings, *, now: datetime) -> SweepReport:
    """Settle expired claims and re-queue stale rows; the tasks are sent when ``session`` commits."""
    report = _sweep_kind(
        session, settings, now, DELIVERIES, lambda ids: enqueue_sends(session, ids, settings=settings)
    )
    report.confirmations = _sweep_kind(
        session, settings, now, CONFIRMATIONS, lambda ids: enqueue_confirmations(session, ids)
    )
    return report


def enqueue_confirmations(session: Session, confirmation_ids: Sequence[int]) -> None:
    """Queue the send of these owed confirmations once ``session`` commits."""
    if not confirmation_ids:
        return
    # The task takes the subscriber id: a subscriber is owed at most one confirmation at a time.
    subscriber_ids = session.scalars(
        sa.select(Confirmation.subscriber_id).where(Confirmation.id.in_(confirmation_ids)).distinct()
    )
    for subscriber_id in sorted(subscriber_ids):
        enqueue_after_commit(session, task_names.SEND_CONFIRMATION, subscriber_id)


def _sweep_kind(
    session: Session, settings: Settings, now: datetime, kind: RowKind, enqueue: Callable[[list[int]], object]
) -> SweepReport:
    report = SweepReport()
    _settle_expired_claims(session, settings, now, kind, report)
    enqueue(report.recovered_ids)
    for ids in _stale_rows(session, settings, now, kind):
        report.requeued_ids.extend(ids)
        enqueue(ids)
    if report.uncertain_ids or report.failed_ids:
        log.warning(
            "sweep: %d %s rows uncertain (may have been sent; not re-sent): %s; %d failed after "
            "%d worker deaths: %s",
            len(report.uncertain_ids),
            kind.name,
            report.uncertain_ids[:50],
            len(report.failed_ids),
            settings.max_worker_deaths,
            report.failed_ids[:50],
        )
    return report


def _settle_expired_claims(
    session: Session, settings: Settings, now: datetime, kind: RowKind, report: SweepReport
) -> None:
    row = kind.model
    expired = sa.and_(row.status == DeliveryStatus.SENDING, row.lease_until < now)
    # The same condition in every UPDATE: a worker that extended its lease meanwhile keeps its rows.
    handed_over = row.attempt_started_at.is_not(None)
    died_too_often = row.lost_claims + 1 >= settings.max_worker_deaths
    report.uncertain_ids = _update_returning(
        session,
        row,
        sa.and_(expired, handed_over),
        {"status": DeliveryStatus.UNCERTAIN, "lease_until": None, "updated_at": now},
    )
    report.failed_ids = _update_returning(
        session,
        row,
        sa.and_(expired, ~handed_over, died_too_often),
        {
            "status": DeliveryStatus.FAILED,
            "lost_claims": row.lost_claims + 1,
            "lease_until": None,
            "last_smtp_reply": f"its worker died {settings.max_worker_deaths} times before sending it",
            "updated_at": now,
        },
    )
    report.recovered_ids = _update_returning(
        session,
        row,
        sa.and_(expired, ~handed_over),
        {
            "status": waiting_again(row),
            "lost_claims": row.lost_claims + 1,
            "lease_until": None,
            "next_attempt_at": None,
            "updated_at": now,
        },
    )
    for row_id in report.uncertain_ids:
        _audit(session, kind, "uncertain", row_id)
    for row_id in report.failed_ids:
        _audit(session, kind, "worker_deaths", row_id)


def _audit(session: Session, kind: RowKind, what: str, row_id: int) -> None:
    if kind is DELIVERIES:
        audit.record(session, "system", f"delivery.{what}", delivery_id=row_id)
    else:
        audit.record(session, "system", f"{kind.name}.{what}", **{f"{kind.name}_id": row_id})


def _update_returning(
    session: Session, row: type, condition: sa.ColumnElement[bool], values: dict
) -> list[int]:
    statement = (
        sa.update(row)
        .where(condition)
        .values(**values)
        .returning(row.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(session.scalars(statement))


def _stale_rows(session: Session, settings: Settings, now: datetime, kind: RowKind) -> Iterator[list[int]]:
    """Pending rows not queued for a while, and due retries not queued since they fell due, by chunk."""
    row = kind.model
    stale_before = now - timedelta(seconds=settings.requeue_after_seconds)
    condition = sa.or_(
        sa.and_(row.status == DeliveryStatus.PENDING, row.updated_at <= stale_before),
        sa.and_(
            row.status == DeliveryStatus.RETRY,
            row.next_attempt_at <= now,
            # updated_at is when it was last queued (or recorded): once since it fell due.
            sa.or_(row.updated_at < row.next_attempt_at, row.updated_at <= stale_before),
        ),
    )
    if row is Delivery:
        condition = sa.and_(
            Delivery.digest_id.not_in(sa.select(Digest.id).where(Digest.paused_at.is_not(None))), condition
        )
    after_id = 0
    while True:
        ids = list(
            session.scalars(
                sa.select(row.id).where(condition, row.id > after_id).order_by(row.id).limit(SWEEP_CHUNK)
            )
        )
        if not ids:
            return
        session.execute(
            sa.update(row)
            .where(row.id.in_(ids))
            .values(updated_at=now)
            .execution_options(synchronize_session=False)
        )
        yield ids
        after_id = ids[-1]
