"""Signing up with double opt-in: the request, the confirm link, and the signups never confirmed.

The worker deciding a recorded signup and the web pages adapt these functions; each takes a
Session (and Settings) and leaves committing to the caller. What a visitor is told never depends on
whether an address is already known: these functions return an outcome for the caller's records
and tests, never for the page.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail import clock
from papermail.config import Settings
from papermail.db import audit
from papermail.db.inserts import insert_ignoring_conflicts
from papermail.db.models import Subscriber, SubscriberStatus
from papermail.redaction import mask_email
from papermail.signup.confirmations import link_stamp, owe_confirmation
from papermail.signup.limits import RateLimiter, mailbox_key
from papermail.subscribers import links
from papermail.subscribers.core import is_suppressed
from papermail.subscribers.preferences import Preferences, apply_preferences, preference_values

log = logging.getLogger(__name__)


class SignupOutcome(enum.StrEnum):
    """What a signup did; never shown to the visitor (every outcome gets the same page)."""

    CONFIRMATION_QUEUED = "confirmation_queued"  # new, pending or unsubscribed
    ALREADY_ACTIVE = "already_active"
    THROTTLED = "throttled"  # too many confirmation emails to this address lately
    SUPPRESSED = "suppressed"  # bounced, complained or erased: never mailed


class ConfirmState(enum.StrEnum):
    READY = "ready"  # a valid, unused link for a subscriber who isn't active yet
    ALREADY_ACTIVE = "already_active"
    INVALID = "invalid"  # tampered, expired, used, or for an address we won't mail


# -- signing up -----------------------------------------------------------------------------------


def request_signup(
    session: Session,
    settings: Settings,
    *,
    email: str,
    preferences: Preferences,
    limiter: RateLimiter,
) -> SignupOutcome:
    """Record a signup for a normalised address and queue its confirmation email if due."""
    if is_suppressed(session, email):
        return SignupOutcome.SUPPRESSED
    now = clock.now()
    created = _insert_if_missing(session, email, preferences, now)
    # Locked until commit, so concurrent signups for one address are counted one at a time.
    subscriber = session.scalars(
        sa.select(Subscriber).where(Subscriber.email == email).with_for_update()
    ).one()
    if subscriber.status == SubscriberStatus.ACTIVE:
        return SignupOutcome.ALREADY_ACTIVE
    if subscriber.status == SubscriberStatus.BOUNCED:
        return SignupOutcome.SUPPRESSED
    # Pending or unsubscribed: the latest signup's choices wait for the confirmation click.
    apply_preferences(subscriber, preferences)
    if not limiter.allow(session, mailbox_key("confirm", email), settings.confirmations_per_address):
        log.info("signup: confirmation limit reached for %s", mask_email(email))
        return SignupOutcome.THROTTLED
    subscriber.confirmation_sent_at = now
    audit.record(session, "web", "subscriber.signup", subscriber_id=subscriber.id, new=created)
    owe_confirmation(session, subscriber, now)
    log.info("signup: confirmation queued for %s (subscriber %s)", mask_email(email), subscriber.id)
    return SignupOutcome.CONFIRMATION_QUEUED


def _insert_if_missing(session: Session, email: str, preferences: Preferences, now: datetime) -> bool:
    """Insert a pending subscriber unless the address exists; True if this call inserted it."""
    values = {
        "email": email,
        "status": SubscriberStatus.PENDING,
        **preference_values(preferences),
        "created_at": now,
        "soft_bounce_count": 0,
    }
    # ON CONFLICT DO NOTHING: a burst of identical signups yields one row, never an error.
    statement = insert_ignoring_conflicts(session, Subscriber, ["email"]).values(values)
    return session.execute(statement).rowcount == 1


# -- following the confirm link -------------------------------------------------------------------


@dataclass(frozen=True)
class ConfirmCheck:
    """What a confirm link points at."""

    state: ConfirmState
    subscriber: Subscriber | None = None


def check_confirm_token(
    session: Session, settings: Settings, token: str, *, lock: bool = False
) -> ConfirmCheck:
    """Look at a confirm link without changing anything (GET shows a button, POST confirms)."""
    try:
        payload = links.read_token(
            settings, links.Purpose.CONFIRM, token, max_age=timedelta(hours=settings.confirm_hours)
        )
    except links.BadToken:
        return ConfirmCheck(ConfirmState.INVALID)
    if len(payload) != 3 or not isinstance(payload[1], int):
        return ConfirmCheck(ConfirmState.INVALID)
    subscriber_id, issued_ms, address = payload
    subscriber = session.get(Subscriber, subscriber_id, with_for_update=lock)
    if subscriber is None or links.address_tag(subscriber.email) != address:
        return ConfirmCheck(ConfirmState.INVALID)
    if subscriber.status == SubscriberStatus.ACTIVE:
        return ConfirmCheck(ConfirmState.ALREADY_ACTIVE, subscriber)
    # Only the latest email's link works: a newer signup replaced the request this one was for.
    latest = subscriber.confirmation_sent_at
    if latest is None or issued_ms < link_stamp(latest):
        return ConfirmCheck(ConfirmState.INVALID)
    # A link works once: a confirmation at or after the request it was mailed for used it up.
    used = subscriber.confirmed_at is not None and link_stamp(subscriber.confirmed_at) >= issued_ms
    waiting = subscriber.status in (SubscriberStatus.PENDING, SubscriberStatus.UNSUBSCRIBED)
    if used or not waiting or is_suppressed(session, subscriber.email):
        return ConfirmCheck(ConfirmState.INVALID)
    return ConfirmCheck(ConfirmState.READY, subscriber)


def confirm(session: Session, settings: Settings, token: str, *, ip: str | None = None) -> ConfirmCheck:
    """Confirm the subscription a link was mailed for; idempotent for an active subscriber."""
    check = check_confirm_token(session, settings, token, lock=True)
    if check.state != ConfirmState.READY:
        return check
    subscriber = check.subscriber
    assert subscriber is not None
    subscriber.status = SubscriberStatus.ACTIVE
    subscriber.confirmed_at = clock.now()
    subscriber.unsubscribed_at = None
    subscriber.consent_ip = ip if settings.record_consent_ip else None
    audit.record(session, "web", "subscriber.confirm", subscriber_id=subscriber.id)
    log.info("subscriber %s confirmed", subscriber.id)
    return ConfirmCheck(ConfirmState.READY, subscriber)


# -- signups never confirmed ----------------------------------------------------------------------


def purge_unconfirmed(session: Session, settings: Settings) -> int:
    """Delete signups never confirmed within ``unconfirmed_days`` of their last request."""
    cutoff = clock.now() - timedelta(days=settings.unconfirmed_days)
    last_request = sa.func.coalesce(Subscriber.confirmation_sent_at, Subscriber.created_at)
    result = session.execute(
        sa.delete(Subscriber).where(
            Subscriber.status == SubscriberStatus.PENDING,
            Subscriber.confirmed_at.is_(None),
            last_request < cutoff,
        ),
        execution_options={"synchronize_session": False},
    )
    purged = result.rowcount or 0
    if purged:
        audit.record(session, "system", "subscriber.purge_unconfirmed", count=purged)
    return purged
