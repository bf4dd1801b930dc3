"""The sweeper: find rows of the send ledger that fell between the cracks and put them back.

Every kind of row (deliveries, confirmations) follows the same rules (:mod:`papermail.sending.claims`),
so the same sweep settles each; its owner says how its ids are queued again:

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail.config import Settings
from papermail.db import audit
from papermail.db.models import DeliveryStatus
from papermail.sending.claims import RowKind, waiting_again

log = logging.getLogger(__name__)

SWEEP_CHUNK = 1000


@dataclass
class SweepReport:
    """What one sweep of one kind of row changed and queued."""

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


def sweep_rows(
    session: Session,
    settings: Settings,
    now: datetime,
    kind: RowKind,
    enqueue: Callable[[list[int]], object],
    report: SweepReport,
) -> SweepReport:
    """Settle the kind's expired claims and re-queue its stale rows through ``enqueue``, into ``report``.

    The tasks ``enqueue`` queues are sent when ``session`` commits.
    """
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
    # "delivery_id" is an audit column of its own; other kinds' ids go in the details.
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
    if kind.sendable is not None:
        condition = sa.and_(kind.sendable(), condition)
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
