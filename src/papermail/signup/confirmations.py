"""Confirmation emails owed: one row per signup request, sent and swept under the digests' rules.

A signup records the confirmation it owes in the same transaction as the signup itself, then
queues its send after commit. If that queueing fails (the broker is down, the embedded broker's
file is unwritable, a worker dies, or the message is lost), the row stays pending and the sweeper
queues it again after ``PAPERMAIL_REQUEUE_AFTER_SECONDS``, as it does for digests. The send
(:func:`papermail.signup.send_confirmation`) claims the row, hands it over and records the outcome
exactly as a digest delivery does (:mod:`papermail.sending.claims`), through the same outbox.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail import task_names
from papermail.celery_app import enqueue_after_commit
from papermail.db.models import Confirmation, DeliveryStatus, Subscriber

SUPERSEDED = "superseded by a newer signup request"
# What ``papermail stats`` shows, and the statuses each figure counts.
STATS = {
    "owed": (DeliveryStatus.PENDING, DeliveryStatus.RETRY, DeliveryStatus.SENDING),
    "sent": (DeliveryStatus.SENT,),
    "failed": (DeliveryStatus.FAILED, DeliveryStatus.EXHAUSTED),
    "uncertain": (DeliveryStatus.UNCERTAIN,),
    "skipped": (DeliveryStatus.SKIPPED,),
}


def owe_confirmation(session: Session, subscriber: Subscriber, requested_at: datetime) -> Confirmation:
    """Record that the signup request owes a confirmation email; queue its send after commit.

    The task takes the subscriber id: at most one confirmation per subscriber is owed at a time.
    """
    # A newer request supersedes an older one not yet sent: one email, carrying the newest link.
    session.execute(
        sa.update(Confirmation)
        .where(
            Confirmation.subscriber_id == subscriber.id,
            Confirmation.status.in_([DeliveryStatus.PENDING, DeliveryStatus.RETRY]),
        )
        .values(status=DeliveryStatus.SKIPPED, skip_reason=SUPERSEDED, updated_at=requested_at)
        .execution_options(synchronize_session=False)
    )
    confirmation = Confirmation(
        subscriber_id=subscriber.id,
        requested_at=requested_at,
        status=DeliveryStatus.PENDING,
        attempts=0,
        claims=0,
        lost_claims=0,
        updated_at=requested_at,
    )
    session.add(confirmation)
    session.flush()
    enqueue_after_commit(session, task_names.SEND_CONFIRMATION, subscriber.id)
    return confirmation


def confirmation_counts(session: Session) -> dict[str, int]:
    """Confirmation emails owed, sent, failed, uncertain and skipped (superseded or not needed)."""
    found = dict(
        session.execute(sa.select(Confirmation.status, sa.func.count()).group_by(Confirmation.status)).all()
    )
    return {name: sum(found.get(status, 0) for status in statuses) for name, statuses in STATS.items()}
