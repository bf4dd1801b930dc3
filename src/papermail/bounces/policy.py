"""What a verdict does to a subscriber (Mailman's defaults; the reasons are in docs/bounces.md).

- hard: status ``bounced`` and suppressed at once (the reason is in the audit log, the report in
  ``inbound_messages``);
- complaint: unsubscribed and suppressed for good; ``reactivate`` can't lift it;
- soft: +0.5 to the bounce score, at most once a day; the score starts over when the last soft
  bounce is older than 7 days or a delivery has succeeded since; at 5 the subscriber is bounced;
- sender and none: nothing happens to the reader (a success resets the score).

A subscriber already out of the mailing (unsubscribed, bounced) is recorded and left alone, except
that a complaint always wins.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail import clock
from papermail.bounces.outcome import Action
from papermail.db import audit
from papermail.db.models import (
    BounceEvent,
    BounceVerdict,
    Delivery,
    DeliveryStatus,
    Subscriber,
    SubscriberStatus,
    Suppression,
)
from papermail.redaction import email_hash

SOFT_SCORE = 0.5
SCORE_THRESHOLD = 5.0
SCORE_ONCE_PER = timedelta(days=1)
SCORE_STALE_AFTER = timedelta(days=7)
# A delivery counts as a success once this long has passed after it without a bounce of its own.
SUCCESS_AFTER = timedelta(days=1)
# The verdicts that act on a reader, the strongest first.
STRENGTH = (BounceVerdict.COMPLAINT, BounceVerdict.HARD, BounceVerdict.SOFT, BounceVerdict.SENDER)


def strongest(verdicts: list[BounceVerdict]) -> BounceVerdict:
    """The verdict that matters most among several (a complaint over a hard bounce, ...)."""
    for verdict in STRENGTH:
        if verdict in verdicts:
            return verdict
    return BounceVerdict.NONE


class Suppressions:
    """The suppression list as the reports of one batch see it: read in bulk, added to as they go."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._by_hash: dict[str, Suppression | None] = {}

    def load(self, emails: Iterable[str]) -> None:
        """Read the entries of these addresses in one query."""
        hashes = {email_hash(e) for e in emails} - self._by_hash.keys()
        if not hashes:
            return
        self._by_hash.update(dict.fromkeys(hashes))
        query = sa.select(Suppression).where(Suppression.email_hash.in_(hashes))
        self._by_hash.update((row.email_hash, row) for row in self.session.scalars(query))

    def get(self, email: str) -> Suppression | None:
        hashed = email_hash(email)
        if hashed not in self._by_hash:
            self.load([email])
        return self._by_hash[hashed]

    def add(self, email: str, reason: str) -> None:
        """Suppress the address (the caller knows it isn't yet)."""
        row = Suppression(email_hash=email_hash(email), reason=reason, created_at=clock.now())
        self.session.add(row)
        self._by_hash[row.email_hash] = row


def apply_verdict(
    session: Session,
    subscriber: Subscriber | None,
    verdict: BounceVerdict,
    *,
    reason: str,
    suppressions: Suppressions,
    delivery_id: int | None = None,
) -> Action:
    """Change the subscriber as the verdict says; return what was done."""
    if subscriber is None:
        return Action.NOT_A_SUBSCRIBER
    if verdict == BounceVerdict.COMPLAINT:
        return _complaint(session, subscriber, reason, suppressions)
    if verdict == BounceVerdict.NONE:
        _reset_score(subscriber)
        return Action.NONE
    if subscriber.status not in (SubscriberStatus.ACTIVE, SubscriberStatus.PENDING):
        return Action.NONE
    if verdict == BounceVerdict.HARD:
        _bounce(session, subscriber, reason, suppressions)
        return Action.SUPPRESSED
    if verdict == BounceVerdict.SOFT:
        return _soft(session, subscriber, reason, delivery_id, suppressions)
    return Action.NONE  # sender: our fault, shown to the operator


def _bounce(session: Session, subscriber: Subscriber, reason: str, suppressions: Suppressions) -> None:
    """What ``subscribers.mark_bounced`` does, with the batch's view of the suppression list."""
    subscriber.status = SubscriberStatus.BOUNCED
    subscriber.hard_bounced_at = clock.now()
    if suppressions.get(subscriber.email) is None:
        suppressions.add(subscriber.email, "bounce")
    audit.record(session, "system", "subscriber.bounce", subscriber_id=subscriber.id, reason=reason[:500])


def _complaint(session: Session, subscriber: Subscriber, reason: str, suppressions: Suppressions) -> Action:
    existing = suppressions.get(subscriber.email)
    if existing is not None and existing.reason == "complaint":
        return Action.NONE
    if existing is not None:
        existing.reason = "complaint"  # a complaint outranks a bounce: reactivate can't lift it now
    else:
        suppressions.add(subscriber.email, "complaint")
    if subscriber.status != SubscriberStatus.UNSUBSCRIBED:
        subscriber.status = SubscriberStatus.UNSUBSCRIBED
        subscriber.unsubscribed_at = clock.now()
    audit.record(session, "system", "subscriber.complaint", subscriber_id=subscriber.id, reason=reason[:500])
    return Action.UNSUBSCRIBED


def _soft(
    session: Session,
    subscriber: Subscriber,
    reason: str,
    delivery_id: int | None,
    suppressions: Suppressions,
) -> Action:
    now = clock.now()
    last = subscriber.last_soft_bounce_at
    if last is not None and now - last < SCORE_ONCE_PER:
        return Action.NONE
    stale = last is None or now - last > SCORE_STALE_AFTER
    if stale or _delivered_since(session, subscriber, last, delivery_id):
        subscriber.bounce_score = 0.0
    subscriber.bounce_score += SOFT_SCORE
    subscriber.soft_bounce_count += 1
    subscriber.last_soft_bounce_at = now
    if subscriber.bounce_score >= SCORE_THRESHOLD:
        _bounce(
            session, subscriber, f"bounce score {subscriber.bounce_score:g}; last: {reason}", suppressions
        )
        return Action.SUPPRESSED
    return Action.COUNTED


def _reset_score(subscriber: Subscriber) -> None:
    subscriber.bounce_score = 0.0
    subscriber.last_soft_bounce_at = None


def _delivered_since(
    session: Session, subscriber: Subscriber, since: datetime, bounced_id: int | None
) -> bool:
    """True if a digest sent after ``since`` (not the one bouncing now) has had a day to bounce and didn't."""
    bounced = sa.select(BounceEvent.delivery_id).where(
        BounceEvent.subscriber_id == subscriber.id, BounceEvent.delivery_id.is_not(None)
    )
    query = sa.select(Delivery.id).where(
        Delivery.subscriber_id == subscriber.id,
        Delivery.status == DeliveryStatus.SENT,
        Delivery.sent_at > since,
        Delivery.sent_at < clock.now() - SUCCESS_AFTER,
        Delivery.id.not_in(bounced),
    )
    if bounced_id is not None:
        query = query.where(Delivery.id != bounced_id)
    return session.scalar(query.limit(1)) is not None


def reactivate(session: Session, subscriber: Subscriber, *, actor: str) -> bool:
    """Lift a bounce (never a complaint); return False if there was none to lift."""
    hashed = email_hash(subscriber.email)
    suppression = session.scalar(sa.select(Suppression).where(Suppression.email_hash == hashed))
    if suppression is not None and suppression.reason != "bounce":
        raise PermissionError(
            f"{subscriber.email} is suppressed because of a {suppression.reason}; that is never lifted"
        )
    if subscriber.status != SubscriberStatus.BOUNCED and suppression is None:
        return False
    if suppression is not None:
        session.delete(suppression)
    subscriber.status = SubscriberStatus.ACTIVE if subscriber.confirmed_at else SubscriberStatus.PENDING
    subscriber.hard_bounced_at = None
    _reset_score(subscriber)
    audit.record(session, actor, "subscriber.reactivate", subscriber_id=subscriber.id)
    return True
