"""A digest delivery as a row of the send ledger (:mod:`papermail.sending.claims`).

What sets deliveries apart from the other rows sent under those rules: they belong to a digest,
which the circuit breaker or an admin may pause, and a resend may ask for rows already settled.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail.db.models import Delivery, DeliveryStatus, Digest, Subscriber, SubscriberStatus
from papermail.sending.claims import CLAIMABLE, RowKind
from papermail.subscribers.core import mailable_ids, mark_bounced


def digest_not_paused() -> sa.ColumnElement[bool]:
    """A delivery whose digest the circuit breaker (or an admin) has not paused."""
    return Delivery.digest_id.not_in(sa.select(Digest.id).where(Digest.paused_at.is_not(None)))


DELIVERIES = RowKind(
    Delivery,
    (SubscriberStatus.ACTIVE,),
    "delivery",
    mark_bounced,
    sendable=digest_not_paused,
    digest_id=Delivery.digest_id,
)


def ineligible_resends(
    session: Session, ids: Sequence[int], claimable: Collection[DeliveryStatus]
) -> set[int]:
    """Rows a resend would claim whose subscriber may no longer be mailed: they are left as they are.

    A planned row (pending, retry) of an ineligible subscriber is claimed and recorded as skipped
    with the reason; a failed or sent one keeps its status and its story.
    """
    resend_statuses = set(claimable) - set(CLAIMABLE)
    if not resend_statuses:
        return set()
    rows = session.execute(
        sa.select(Delivery.id, Subscriber)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.id.in_(ids), Delivery.status.in_(resend_statuses))
    ).all()
    eligible = mailable_ids(session, [subscriber for _, subscriber in rows])
    return {delivery_id for delivery_id, subscriber in rows if subscriber.id not in eligible}
