"""The sweeper: find deliveries that fell between the cracks and put them back on the right path.

* A row left ``sending`` past its lease lost its worker. If it was already handed to the relay
  (``attempt_started_at`` set), the relay may have delivered it before the worker died: it becomes
  **uncertain** and is reported, never silently sent again. Otherwise it certainly was not sent: it
  goes back to pending (or retry), with ``lost_claims`` + 1, and is re-queued (the send path sends
  such rows one claim each, so a message that kills its worker can only take itself down). After
  ``PAPERMAIL_MAX_WORKER_DEATHS`` such deaths it is failed.
* A row ``pending`` for longer than ``PAPERMAIL_REQUEUE_AFTER_SECONDS`` since it was last queued (the
  broker lost its message, or Redis was flushed) is queued again, as is a ``retry`` row whose time
  has come. Queuing a row twice is harmless: only one task can claim it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail import audit
from papermail.config import Settings
from papermail.db.models import Delivery, DeliveryStatus, Digest
from papermail.delivery.plan import enqueue_sends

log = logging.getLogger(__name__)

SWEEP_CHUNK = 1000


@dataclass
class SweepReport:
    """What one sweep changed and queued."""

    uncertain_ids: list[int] = field(default_factory=list)
    failed_ids: list[int] = field(default_factory=list)  # their workers kept dying
    recovered_ids: list[int] = field(default_factory=list)  # claimed, never handed over: queued again
    requeued_ids: list[int] = field(default_factory=list)  # pending or due retries, queued in batches

    def counts(self) -> dict[str, int]:
        """The number of rows per outcome, for logs."""
        return {
            "uncertain": len(self.uncertain_ids),
            "failed": len(self.failed_ids),
            "recovered": len(self.recovered_ids),
            "requeued": len(self.requeued_ids),
        }


def sweep(session: Session, settings: Settings, *, now: datetime) -> SweepReport:
    """Settle expired claims and re-queue stale rows; the tasks are sent when ``session`` commits."""
    report = SweepReport()
    _settle_expired_claims(session, settings, now, report)
    for ids in _stale_rows(session, settings, now):
        report.requeued_ids.extend(ids)
        enqueue_sends(session, ids, settings=settings)
    if report.uncertain_ids or report.failed_ids:
        log.warning(
            "sweep: %d deliveries uncertain (may have been sent; not re-sent): %s; %d failed after "
            "%d worker deaths: %s",
            len(report.uncertain_ids),
            report.uncertain_ids[:50],
            len(report.failed_ids),
            settings.max_worker_deaths,
            report.failed_ids[:50],
        )
    return report


def _settle_expired_claims(session: Session, settings: Settings, now: datetime, report: SweepReport) -> None:
    expired = sa.and_(Delivery.status == DeliveryStatus.SENDING, Delivery.lease_until < now)
    # The same condition in every UPDATE: a worker that extended its lease meanwhile keeps its rows.
    handed_over = Delivery.attempt_started_at.is_not(None)
    died_too_often = Delivery.lost_claims + 1 >= settings.max_worker_deaths
    report.uncertain_ids = _update_returning(
        session,
        sa.and_(expired, handed_over),
        {"status": DeliveryStatus.UNCERTAIN, "lease_until": None, "updated_at": now},
    )
    report.failed_ids = _update_returning(
        session,
        sa.and_(expired, ~handed_over, died_too_often),
        {
            "status": DeliveryStatus.FAILED,
            "lost_claims": Delivery.lost_claims + 1,
            "lease_until": None,
            "last_smtp_reply": f"its worker died {settings.max_worker_deaths} times before sending it",
            "updated_at": now,
        },
    )
    report.recovered_ids = _update_returning(
        session,
        sa.and_(expired, ~handed_over),
        {
            "status": sa.case(
                (Delivery.attempts > 0, DeliveryStatus.RETRY.value), else_=DeliveryStatus.PENDING.value
            ),
            "lost_claims": Delivery.lost_claims + 1,
            "lease_until": None,
            "next_attempt_at": None,
            "updated_at": now,
        },
    )
    for delivery_id in report.uncertain_ids:
        audit.record(session, "system", "delivery.uncertain", delivery_id=delivery_id)
    for delivery_id in report.failed_ids:
        audit.record(session, "system", "delivery.worker_deaths", delivery_id=delivery_id)
    enqueue_sends(session, report.recovered_ids, settings=settings)


def _update_returning(session: Session, condition: sa.ColumnElement[bool], values: dict) -> list[int]:
    statement = (
        sa.update(Delivery)
        .where(condition)
        .values(**values)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    return sorted(session.scalars(statement))


def _stale_rows(session: Session, settings: Settings, now: datetime) -> Iterator[list[int]]:
    """Pending rows not queued for a while, and due retries not queued since they fell due, by chunk."""
    stale_before = now - timedelta(seconds=settings.requeue_after_seconds)
    paused = sa.select(Digest.id).where(Digest.paused_at.is_not(None))
    condition = sa.and_(
        Delivery.digest_id.not_in(paused),
        sa.or_(
            sa.and_(Delivery.status == DeliveryStatus.PENDING, Delivery.updated_at <= stale_before),
            sa.and_(
                Delivery.status == DeliveryStatus.RETRY,
                Delivery.next_attempt_at <= now,
                # updated_at is when it was last queued (or recorded): once since it fell due.
                sa.or_(Delivery.updated_at < Delivery.next_attempt_at, Delivery.updated_at <= stale_before),
            ),
        ),
    )
    after_id = 0
    while True:
        ids = list(
            session.scalars(
                sa.select(Delivery.id)
                .where(condition, Delivery.id > after_id)
                .order_by(Delivery.id)
                .limit(SWEEP_CHUNK)
            )
        )
        if not ids:
            return
        session.execute(
            sa.update(Delivery)
            .where(Delivery.id.in_(ids))
            .values(updated_at=now)
            .execution_options(synchronize_session=False)
        )
        yield ids
        after_id = ids[-1]
