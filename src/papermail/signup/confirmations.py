"""One confirmation email's life: owed by a signup request, rendered, sent and swept like a digest.

A signup records the confirmation it owes in the same transaction as the signup itself, then
queues its send after commit. If that queueing fails (the broker is down, the embedded broker's
file is unwritable, a worker dies, or the message is lost), the row stays pending and the sweeper
queues it again after ``PAPERMAIL_REQUEUE_AFTER_SECONDS``, as it does for digests. The send
(:func:`send_confirmation`) claims the row, hands it over and records the outcome exactly as a
digest delivery does (:mod:`papermail.sending.claims`), through the same outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from functools import partial

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from papermail import task_names
from papermail.celery_app import enqueue_after_commit
from papermail.config import Settings
from papermail.db import session_factory
from papermail.db.models import Confirmation, DeliveryStatus, Subscriber, SubscriberStatus
from papermail.mail import emails
from papermail.mail.message import OutgoingEmail
from papermail.mail.outbox import Outbox
from papermail.redaction import mask_email
from papermail.sending.claims import CLAIMABLE, BatchReport, ClaimedRows, RowKind, claim
from papermail.sending.pacing import send_pacer_for
from papermail.sending.sweep import SweepReport, sweep_rows
from papermail.sending.verp import VerpKind, verp_sender_for
from papermail.subscribers import links
from papermail.subscribers.core import mark_bounced

log = logging.getLogger(__name__)

SUPERSEDED = "superseded by a newer signup request"
# What ``papermail stats`` shows, and the statuses each figure counts.
STATS = {
    "owed": (DeliveryStatus.PENDING, DeliveryStatus.RETRY, DeliveryStatus.SENDING),
    "sent": (DeliveryStatus.SENT,),
    "failed": (DeliveryStatus.FAILED, DeliveryStatus.EXHAUSTED),
    "uncertain": (DeliveryStatus.UNCERTAIN,),
    "skipped": (DeliveryStatus.SKIPPED,),
}
# A confirmation awaits a subscriber who has not confirmed yet, or unsubscribed and signed up again.
CONFIRMATIONS = RowKind(
    Confirmation, (SubscriberStatus.PENDING, SubscriberStatus.UNSUBSCRIBED), "confirmation", mark_bounced
)


# -- owed -----------------------------------------------------------------------------------------


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


# -- the email ------------------------------------------------------------------------------------


def link_stamp(moment: datetime) -> int:
    """A signup request's time as its confirm link carries it (milliseconds since 1970)."""
    return int(moment.timestamp() * 1000)


def confirm_link(settings: Settings, subscriber: Subscriber) -> str:
    """The confirmation URL for the subscriber's latest signup request."""
    assert subscriber.confirmation_sent_at is not None
    return links.link(
        settings,
        links.Purpose.CONFIRM,
        subscriber.id,
        link_stamp(subscriber.confirmation_sent_at),
        links.address_tag(subscriber.email),
    )


def render_confirmation(settings: Settings, subscriber: Subscriber) -> OutgoingEmail:
    """The confirmation email for the subscriber's latest signup request."""
    return emails.confirm_subscription(
        subscriber.email,
        confirm_url=confirm_link(settings, subscriber),
        valid_hours=settings.confirm_hours,
        base_url=settings.base_url,
        postal_address=settings.postal_address,
    )


def send_confirmation(
    settings: Settings, subscriber_id: int, *, sessions: sessionmaker[Session] | None = None
) -> BatchReport:
    """Send the confirmation the subscriber is owed, once, under the same rules as a digest.

    It is claimed, handed over and recorded like a delivery (``sending/claims.py``), DKIM-signed
    and paced by the outbox; skipped if the subscriber no longer awaits it; a transient failure
    is retried later (the sweeper re-queues it); a refused recipient is a hard bounce.
    """
    report = BatchReport()
    factory = sessions or session_factory(settings)
    with factory.begin() as session:
        owed = session.scalars(
            sa.select(Confirmation.id).where(
                Confirmation.subscriber_id == subscriber_id, Confirmation.status.in_(CLAIMABLE)
            )
        ).all()
        claims = claim(session, owed, CLAIMABLE, settings, CONFIRMATIONS) if owed else {}
    report.not_claimed_ids = [i for i in owed if i not in claims]
    if not claims:
        return report
    with factory() as session, ClaimedRows(session, settings, claims, report, CONFIRMATIONS) as rows:
        for row in rows.load():
            subscriber = session.get(Subscriber, row.subscriber_id)
            assert subscriber is not None  # the row is deleted with its subscriber
            email = render_confirmation(settings, subscriber)
            session.commit()
            hand_over = partial(rows.hand_over, row)
            with Outbox.from_settings(settings, pacer=send_pacer_for(settings)) as outbox:
                return_path = verp_sender_for(settings, VerpKind.CONFIRMATION, row.id)
                outcome = outbox.send(
                    email, message_id=row.message_id, hand_over=hand_over, return_path=return_path
                )
            rows.record(row, outcome)
            log.info("confirmation %s to %s: %s", row.id, mask_email(row.email), outcome.verdict)
    return report


# -- swept ----------------------------------------------------------------------------------------


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


def sweep_confirmations(session: Session, settings: Settings, now: datetime) -> SweepReport:
    """Settle confirmations whose worker died and re-queue stale ones; queued when ``session`` commits."""
    enqueue = partial(enqueue_confirmations, session)
    return sweep_rows(session, settings, now, CONFIRMATIONS, enqueue, SweepReport())
