"""Resending digests by hand: the frozen content, through the same claim as the scheduled send.

Resend decides only *which* rows to offer; :func:`papermail.delivery.send.send_batch` does the rest
exactly as for a scheduled send. It claims each row with the same conditional UPDATE (so a resend
racing a worker sends one message, not two), renders the row's frozen papers with its pinned
ranking (so the content is the same however trending moved since), reuses the row's Message-ID, and
re-checks that the subscriber may still be mailed. By default only rows that did not go out
(failed, exhausted, uncertain) are claimable; ``force`` adds sent rows, and each forced resend is
written to the audit log before anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail.admin import NotFound, Refused
from papermail.admin.deliveries import (
    UNDELIVERED_STATUSES,
    DeliveryRow,
    delivery_row,
    paused_periods,
    status_counts,
    subscriber_delivery,
)
from papermail.admin.subscribers import get_subscriber, suppression_reason
from papermail.config import Settings
from papermail.db import audit, session_scope
from papermail.db.bookkeeping import AuditLog
from papermail.db.models import Delivery, DeliveryStatus, Subscriber, SubscriberStatus
from papermail.delivery.send import send_batch
from papermail.sending.claims import BatchReport
from papermail.subscribers.core import mailable_ids

RESENDABLE = frozenset(UNDELIVERED_STATUSES)
FORCEABLE = RESENDABLE | {DeliveryStatus.SENT}
FORCE_ACTION = "resend.force"


@dataclass(frozen=True)
class ResendDecision:
    """What resending one subscriber's digest will do, decided before anything is sent.

    ``claimable`` is None when there is nothing to do; ``why`` then says why, in words.
    """

    delivery: DeliveryRow
    claimable: frozenset[DeliveryStatus] | None
    why: str = ""

    @property
    def forced(self) -> bool:
        return self.claimable is not None and DeliveryStatus(self.delivery.status) == DeliveryStatus.SENT


def decide_resend(session: Session, email: str, period_key: str | None, *, force: bool) -> ResendDecision:
    """Find the subscriber's delivery (the period's, or their latest) and whether it may be resent."""
    subscriber = get_subscriber(session, email)
    _refuse_unmailable(session, subscriber)
    row = subscriber_delivery(session, subscriber.id, period_key)
    if row is None:
        raise NotFound(
            f"no digest for {email} in {period_key}" if period_key else f"no digest for {email} yet"
        )
    _refuse_paused(session, row.period_key)
    status = DeliveryStatus(row.status)
    label = f"the {row.period_key} digest for {email}"
    if status in RESENDABLE:
        return ResendDecision(row, RESENDABLE)
    if status == DeliveryStatus.SENT:
        if force:
            return ResendDecision(row, FORCEABLE)
        sent = f"{row.sent_at:%Y-%m-%d %H:%M} UTC" if row.sent_at else "earlier"
        return ResendDecision(row, None, f"{label} was sent {sent}; add --force to send it again")
    if status == DeliveryStatus.SKIPPED:
        return ResendDecision(row, None, f"{label} was skipped ({row.skip_reason}); there is nothing to send")
    return ResendDecision(row, None, f"{label} is {status.value}: the workers will send it")


def _refuse_unmailable(session: Session, subscriber: Subscriber) -> None:
    # Checked here for a clear message; send_batch checks again at send time, whatever we decide.
    reason = suppression_reason(session, subscriber.email)
    if reason is not None:
        raise Refused(
            f"{subscriber.email} is on the suppression list ({reason}); papermail never mails it, "
            "even with --force"
        )
    if subscriber.status != SubscriberStatus.ACTIVE:
        raise Refused(
            f"{subscriber.email} is {subscriber.status.value}; papermail never mails it, even with --force"
        )


def _refuse_paused(session: Session, period_key: str) -> None:
    # A paused period's rows are not claimable (the circuit breaker's promise): say so up front.
    paused = paused_periods(session, [period_key])
    if period_key in paused:
        raise Refused(
            f"sending for {period_key} is paused ({paused[period_key]}); "
            f"resume it first with: papermail digest resume --period {period_key}"
        )


@dataclass(frozen=True)
class ResendResult:
    """What happened to one resent delivery: the batch report and the row as it is now."""

    report: BatchReport
    after: DeliveryRow

    @property
    def sent(self) -> bool:
        return self.after.delivery_id in self.report.sent_ids


def resend_one(
    settings: Settings, decision: ResendDecision, *, actor: str, reason: str | None
) -> ResendResult:
    """Send a decided resend; a forced one is audited first, so even a crash mid-send leaves a trace."""
    assert decision.claimable is not None, "nothing to resend"
    row = decision.delivery
    audit_id = None
    if decision.forced:
        with session_scope(settings) as session:
            entry = audit.record(
                session,
                actor,
                FORCE_ACTION,
                subscriber_id=row.subscriber_id,
                delivery_id=row.delivery_id,
                reason=reason,
                period_key=row.period_key,
                message_id=row.message_id,
                previously_sent_at=row.sent_at.isoformat() if row.sent_at else None,
                outcome="sending",
            )
            session.flush()
            audit_id = entry.id
    report = send_batch(settings, [row.delivery_id], claimable=decision.claimable, actor=actor)
    with session_scope(settings) as session:
        after = delivery_row(session, row.delivery_id)
        if audit_id is not None:
            entry = session.get_one(AuditLog, audit_id)
            entry.details = {**entry.details, "outcome": after.status}
    return ResendResult(report, after)


@dataclass
class PeriodResend:
    """A period's undelivered rows: the counts before, who may be resent, and what the sends did."""

    period_key: str
    counts: dict[str, int]
    delivery_ids: list[int]  # undelivered rows whose subscriber may still be mailed
    left_alone: int  # undelivered rows of subscribers who unsubscribed, bounced or were suppressed
    outcome: dict[str, int] = field(default_factory=dict)


def plan_period_resend(session: Session, period_key: str) -> PeriodResend:
    """Count a period's rows by status and pick the undelivered ones that may be resent."""
    _refuse_paused(session, period_key)
    rows = session.execute(
        sa.select(Delivery.id, Subscriber)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.period_key == period_key, Delivery.status.in_(RESENDABLE))
        .order_by(Delivery.id)
    ).all()
    eligible = mailable_ids(session, [subscriber for _, subscriber in rows])
    ids = [delivery_id for delivery_id, subscriber in rows if subscriber.id in eligible]
    return PeriodResend(period_key, status_counts(session, [period_key]), ids, len(rows) - len(ids))


def resend_period(
    settings: Settings, plan: PeriodResend, *, actor: str, on_progress: Callable[[int], None] | None = None
) -> PeriodResend:
    """Resend the planned rows in batches over one connection each; fill in ``plan.outcome``."""
    totals: dict[str, int] = {}
    size = settings.send_batch_size
    for start in range(0, len(plan.delivery_ids), size):
        batch = plan.delivery_ids[start : start + size]
        report = send_batch(settings, batch, claimable=RESENDABLE, actor=actor)
        for name, count in report.counts().items():
            totals[name] = totals.get(name, 0) + count
        if on_progress:
            on_progress(len(batch))
    plan.outcome = totals
    return plan
