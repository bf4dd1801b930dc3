"""Unsubscribing: by an admin (one address, or an import), or by the link in any digest ever sent."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from papermail import clock
from papermail.config import Settings
from papermail.db import audit
from papermail.db.models import Subscriber, SubscriberStatus
from papermail.subscribers import links

log = logging.getLogger(__name__)


def unsubscribe(session: Session, subscriber: Subscriber, *, actor: str, reason: str | None = None) -> bool:
    """Unsubscribe; return False if there was nothing to change (idempotent)."""
    if subscriber.status in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED):
        return False
    subscriber.status = SubscriberStatus.UNSUBSCRIBED
    subscriber.unsubscribed_at = clock.now()
    audit.record(session, actor, "subscriber.unsubscribe", subscriber_id=subscriber.id, reason=reason)
    return True


def unsubscribe_by_link(session: Session, settings: Settings, token: str, *, how: str) -> bool:
    """Unsubscribe whoever the link was made for; False if the link isn't valid. Idempotent.

    A valid link for a subscriber who no longer exists (erased) is a success: they get no mail.
    """
    if not links.is_valid_link(settings, links.Purpose.UNSUBSCRIBE, token):
        return False
    subscriber = links.subscriber_for_link(session, settings, links.Purpose.UNSUBSCRIBE, token)
    if subscriber is not None and unsubscribe(session, subscriber, actor="web", reason=how):
        log.info("subscriber %s unsubscribed (%s)", subscriber.id, how)
    return True
