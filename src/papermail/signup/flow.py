"""Signing up with double opt-in, confirming, changing preferences and unsubscribing by link.

The web pages adapt these functions; each takes a Session (and Settings) and leaves committing to
the caller, except :func:`send_confirmation`, which commits each step as sending a digest does.
What a visitor is told never depends on whether an address is already known: these functions
return an outcome for the caller's records and tests, never for the page.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from papermail import clock
from papermail.config import Settings
from papermail.db import audit, session_factory
from papermail.db.inserts import insert_ignoring_conflicts
from papermail.db.models import Confirmation, Delivery, DeliveryStatus, Paper, Subscriber, SubscriberStatus
from papermail.mail import emails
from papermail.mail.message import OutgoingEmail
from papermail.mail.outbox import Outbox
from papermail.sending.claims import CLAIMABLE, CONFIRMATIONS, BatchReport, ClaimedRows, claim
from papermail.sending.pacing import send_pacer_for
from papermail.sending.verp import VerpKind, verp_sender_for
from papermail.signup.confirmations import owe_confirmation
from papermail.signup.limits import RateLimiter, mailbox_key
from papermail.subscribers import links
from papermail.subscribers.core import (
    InvalidInput,
    Preferences,
    apply_preferences,
    is_suppressed,
    preference_values,
    unsubscribe,
)

log = logging.getLogger(__name__)

# Longest value we accept in any free-text form field (the email has its own, stricter limit).
MAX_FIELD_LENGTH = 1000
# Control characters (CR/LF included) never belong in a form field; "<" and ">" would be markup.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MARKUP = re.compile(r"[<>]")
RECENT_DIGESTS = 5


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


def check_text_fields(fields: Mapping[str, str]) -> None:
    """Refuse over-long values, control characters (CR/LF) and markup in any form field."""
    for label, value in fields.items():
        if len(value) > MAX_FIELD_LENGTH:
            raise InvalidInput(f"{label} is too long (at most {MAX_FIELD_LENGTH} characters).")
        if _CONTROL.search(value):
            raise InvalidInput(f"{label} can't contain line breaks or control characters.")
        if _MARKUP.search(value):
            raise InvalidInput(f"{label} can't contain HTML: please remove < and >.")


def mask_email(email: str) -> str:
    """An address fit for a log line: ``a***@example.org``."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}***@{domain}"


def shown_email(email: str) -> str:
    """An address a page may show to whoever holds its link: ``a…e@example.org``."""
    local, _, domain = email.rpartition("@")
    ends = local[:1] + ("…" + local[-1] if len(local) > 2 else "…")
    return f"{ends}@{domain}"


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


# -- the confirmation email -----------------------------------------------------------------------


def _stamp(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def confirm_link(settings: Settings, subscriber: Subscriber) -> str:
    """The confirmation URL for the subscriber's latest signup request."""
    assert subscriber.confirmation_sent_at is not None
    return links.link(
        settings,
        links.Purpose.CONFIRM,
        subscriber.id,
        _stamp(subscriber.confirmation_sent_at),
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

    It is claimed, handed over and recorded like a delivery (``delivery/claims.py``), DKIM-signed
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


def send_preferences_link(
    settings: Settings, subscriber_id: int, *, sessions: sessionmaker[Session] | None = None
) -> str | None:
    """Mail a subscriber a fresh preferences link; the outcome, or None if they get no mail.

    Asked for from a digest's web page, which shows none itself: only the mailbox gets the key.
    """
    with (sessions or session_factory(settings))() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None or subscriber.status not in (
            SubscriberStatus.ACTIVE,
            SubscriberStatus.UNSUBSCRIBED,
        ):
            return None
        if is_suppressed(session, subscriber.email):
            return None
        email = emails.preferences_link(
            subscriber.email,
            link_url=links.preferences_link(settings, subscriber.id, subscriber.email),
            base_url=settings.base_url,
            postal_address=settings.postal_address,
        )
    with Outbox.from_settings(settings, pacer=send_pacer_for(settings)) as outbox:
        outcome = outbox.send(email)
    log.info("preferences link to subscriber %s: %s", subscriber_id, outcome.verdict)
    return str(outcome.verdict)


# -- following the links --------------------------------------------------------------------------


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
    if latest is None or issued_ms < _stamp(latest):
        return ConfirmCheck(ConfirmState.INVALID)
    # A link works once: a confirmation at or after the request it was mailed for used it up.
    used = subscriber.confirmed_at is not None and _stamp(subscriber.confirmed_at) >= issued_ms
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


def subscriber_for_link(
    session: Session, settings: Settings, purpose: links.Purpose, token: str
) -> Subscriber | None:
    """The subscriber a preferences or unsubscribe link belongs to, or None if it isn't valid.

    A preferences link names the address it was made for: after an erasure or an address change
    it leads nowhere. An unsubscribe link names only the id (ids are never reused), so it works
    for every digest ever sent.
    """
    try:
        payload = links.read_token(settings, purpose, token)
    except links.BadToken:
        return None
    subscriber = session.get(Subscriber, payload[0])
    if purpose == links.Purpose.PREFERENCES and (
        subscriber is None or payload[1:] != [links.address_tag(subscriber.email)]
    ):
        return None
    return subscriber


def is_valid_link(settings: Settings, purpose: links.Purpose, token: str) -> bool:
    """True if the link is signed by us for this purpose and not expired (no database access)."""
    try:
        links.read_token(settings, purpose, token)
    except links.BadToken:
        return False
    return True


def unsubscribe_by_link(session: Session, settings: Settings, token: str, *, how: str) -> bool:
    """Unsubscribe whoever the link was made for; False if the link isn't valid. Idempotent.

    A valid link for a subscriber who no longer exists (erased) is a success: they get no mail.
    """
    if not is_valid_link(settings, links.Purpose.UNSUBSCRIBE, token):
        return False
    subscriber = subscriber_for_link(session, settings, links.Purpose.UNSUBSCRIBE, token)
    if subscriber is not None and unsubscribe(session, subscriber, actor="web", reason=how):
        log.info("subscriber %s unsubscribed (%s)", subscriber.id, how)
    return True


def change_preferences(session: Session, subscriber: Subscriber, preferences: Preferences) -> None:
    """Store new preferences chosen on the preferences page."""
    apply_preferences(subscriber, preferences)
    audit.record(session, "web", "subscriber.preferences", subscriber_id=subscriber.id)


def change_tldr_choice(session: Session, subscriber: Subscriber, show_tldr: bool) -> None:
    """Show or hide Semantic Scholar's TL;DR in the reader's digests (and their browser copies)."""
    if subscriber.show_tldr != show_tldr:
        subscriber.show_tldr = show_tldr
        audit.record(session, "web", "subscriber.tldr", subscriber_id=subscriber.id, show_tldr=show_tldr)


@dataclass(frozen=True)
class SentDigest:
    """A digest a subscriber received, for the preferences page."""

    period_key: str
    sent_at: datetime
    papers: list[Paper]


def recent_digests(session: Session, subscriber_id: int, limit: int = RECENT_DIGESTS) -> list[SentDigest]:
    """The subscriber's last sent digests, newest first, with their papers (two queries)."""
    deliveries = session.scalars(
        sa.select(Delivery)
        .where(Delivery.subscriber_id == subscriber_id, Delivery.status == DeliveryStatus.SENT)
        .order_by(Delivery.sent_at.desc(), Delivery.id.desc())
        .limit(limit)
    ).all()
    paper_ids = {pid for delivery in deliveries for pid in delivery.paper_ids}
    papers = {p.id: p for p in session.scalars(sa.select(Paper).where(Paper.id.in_(paper_ids)))}
    return [
        SentDigest(
            period_key=d.period_key,
            sent_at=d.sent_at or d.updated_at,
            papers=[papers[pid] for pid in d.paper_ids if pid in papers],
        )
        for d in deliveries
    ]


# -- housekeeping ---------------------------------------------------------------------------------


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
