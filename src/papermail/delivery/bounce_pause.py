"""A send that bounces hard from the start pauses itself, so one bad import doesn't burn the domain.

A digest's first ``WINDOW`` deliveries (in planning order) are its sample. Each hard bounce
reported for one of them recounts the sample: once hard bounces pass ``PAPERMAIL_BOUNCE_PAUSE_RATE``
of the deliveries sent in it (and of at least ``MIN_SAMPLE``, so three bounces among the first
five sent don't stop a send), the digest is paused like the circuit breaker pauses it, and
``papermail digest resume`` continues it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail.db.models import BounceEvent, BounceVerdict, Delivery, DeliveryStatus, Digest
from papermail.delivery.breaker import pause_digests

WINDOW = 1000
MIN_SAMPLE = 100


def pause_if_bouncing(session: Session, delivery_id: int, rate: float) -> bool:
    """Pause the delivery's digest if its first deliveries bounce hard above ``rate``; True if paused now."""
    digest_id = session.scalar(sa.select(Delivery.digest_id).where(Delivery.id == delivery_id))
    if digest_id is None:
        return False
    if session.scalar(sa.select(Digest.paused_at).where(Digest.id == digest_id)) is not None:
        return False
    window = (
        sa.select(Delivery.id, Delivery.status)
        .where(Delivery.digest_id == digest_id)
        .order_by(Delivery.id)
        .limit(WINDOW)
        .subquery()
    )
    if delivery_id > (session.scalar(sa.select(sa.func.max(window.c.id))) or 0):
        return False  # past the first deliveries: the relay's own limits take over from here
    sent = session.scalar(
        sa.select(sa.func.count()).select_from(window).where(window.c.status == DeliveryStatus.SENT)
    )
    hard = session.scalar(
        sa.select(sa.func.count(sa.distinct(BounceEvent.delivery_id))).where(
            BounceEvent.delivery_id.in_(sa.select(window.c.id)), BounceEvent.verdict == BounceVerdict.HARD
        )
    )
    if hard <= rate * max(sent or 0, MIN_SAMPLE):
        return False
    reason = f"hard bounces: {hard} of the first {sent} deliveries sent (limit {rate:.0%})"
    return bool(pause_digests(session, [digest_id], reason))
