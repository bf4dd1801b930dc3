"""Subscribers: address normalisation, finding one, suppression and whether one may be mailed.

The web pages and the admin command line both change subscribers through these functions, so the
rules (one row per address, never mail the suppressed) hold whichever door a change comes through.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import Session

from papermail import clock
from papermail.db import audit
from papermail.db.models import Subscriber, SubscriberStatus, Suppression
from papermail.redaction import email_hash

MAX_EMAIL_LENGTH = 254  # RFC 5321 path limit
MAX_LOCAL_PART_OCTETS = 64  # RFC 5321 4.5.3.1.1: relays may refuse anything longer


class InvalidInput(ValueError):
    """User input that can't be accepted; the message is safe to show on a form or a terminal."""


def normalise_email(raw: str) -> str:
    """The canonical form of an address: validated, lower-cased, IDN domains as punycode."""
    if any(ch in raw for ch in "\r\n\0"):
        raise InvalidInput("An email address can't contain line breaks.")
    candidate = raw.strip()
    if not candidate:
        raise InvalidInput("Please enter an email address.")
    if len(candidate) > MAX_EMAIL_LENGTH:
        raise InvalidInput(f"That email address is longer than {MAX_EMAIL_LENGTH} characters.")
    try:
        checked = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(f"That doesn't look like an email address: {exc}") from None
    # ascii_email is None when the local part itself is non-ASCII (SMTPUTF8); keep the Unicode form.
    address = (checked.ascii_email or checked.normalized).lower()
    if len(address) > MAX_EMAIL_LENGTH:
        raise InvalidInput(f"That email address is longer than {MAX_EMAIL_LENGTH} characters.")
    if len(address.rpartition("@")[0].encode()) > MAX_LOCAL_PART_OCTETS:
        raise InvalidInput(
            f"The part before the @ is longer than {MAX_LOCAL_PART_OCTETS} bytes, which mail servers refuse."
        )
    return address


def find_by_email(session: Session, email: str) -> Subscriber | None:
    """The subscriber with this (already normalised) address, if any."""
    return session.scalar(sa.select(Subscriber).where(Subscriber.email == email))


def is_suppressed(session: Session, email: str) -> bool:
    """True if this address must never be mailed (hard bounce, complaint, erasure)."""
    query = sa.select(Suppression.id).where(Suppression.email_hash == email_hash(email))
    return session.scalar(query) is not None


def suppress(session: Session, email: str, reason: str) -> None:
    """Add the address to the suppression list (idempotent)."""
    if not is_suppressed(session, email):
        session.add(Suppression(email_hash=email_hash(email), reason=reason, created_at=clock.now()))
        session.flush()


def is_mailable(session: Session, subscriber: Subscriber) -> bool:
    """True if a digest may be sent to this subscriber right now."""
    return subscriber.status == SubscriberStatus.ACTIVE and not is_suppressed(session, subscriber.email)


def mailable_ids(session: Session, subscribers: Sequence[Subscriber]) -> set[int]:
    """The ids of those subscribers a digest may be sent to right now: :func:`is_mailable` in bulk."""
    active = {email_hash(s.email): s.id for s in subscribers if s.status == SubscriberStatus.ACTIVE}
    if not active:
        return set()
    query = sa.select(Suppression.email_hash).where(Suppression.email_hash.in_(active))
    suppressed = set(session.scalars(query))
    return {subscriber_id for hashed, subscriber_id in active.items() if hashed not in suppressed}


def mark_bounced(session: Session, subscriber: Subscriber, *, reply: str) -> None:
    """A hard bounce: never mail this address again."""
    subscriber.status = SubscriberStatus.BOUNCED
    subscriber.hard_bounced_at = clock.now()
    suppress(session, subscriber.email, "bounce")
    audit.record(session, "system", "subscriber.bounce", subscriber_id=subscriber.id, reason=reply[:500])
