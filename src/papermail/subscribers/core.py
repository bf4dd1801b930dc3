"""Subscribers: address normalisation, preferences, eligibility, unsubscribing and suppression.

The web pages and the admin command line both change subscribers through these functions, so the
rules (one row per address, never mail the suppressed) hold whichever door a change comes through.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import Session

from papermail import clock
from papermail.categories import UnknownCategory, canonical_categories
from papermail.config import validate_timezone
from papermail.db import audit
from papermail.db.models import Frequency, Subscriber, SubscriberStatus, Suppression

MAX_EMAIL_LENGTH = 254  # RFC 5321 path limit
MAX_LOCAL_PART_OCTETS = 64  # RFC 5321 4.5.3.1.1: relays may refuse anything longer
MAX_TOPICS = 20
MAX_KEYWORDS = 20
MAX_KEYWORD_LENGTH = 60
# Letters, digits, spaces and a little punctuation: a keyword is matched as whole words, so
# anything that looks like markup or a header is a mistake, not a keyword.
KEYWORD_PATTERN = re.compile(r"^[\w][\w .+#'-]*$")


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


def email_hash(email: str) -> str:
    """The SHA-256 of a normalised address: what a suppression keeps after the address is erased."""
    return hashlib.sha256(email.encode()).hexdigest()


@dataclass(frozen=True)
class Preferences:
    """What a subscriber chooses; build it with :func:`parse_preferences` to validate it."""

    topics: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    frequency: Frequency = Frequency.WEEKLY
    send_weekday: int = 0
    send_hour: int = 8
    timezone: str = "UTC"


def parse_preferences(
    *,
    topics: list[str] | tuple[str, ...] = (),
    keywords: list[str] | tuple[str, ...] | str = (),
    frequency: str = "weekly",
    send_weekday: int | str = 0,
    send_hour: int | str = 8,
    timezone: str = "UTC",
) -> Preferences:
    """Validate raw preference values from a form, a CSV row or the command line."""
    if isinstance(keywords, str):
        keywords = keywords.split(",")
    try:
        clean_topics = sorted(canonical_categories(topics))
    except UnknownCategory as exc:
        raise InvalidInput(str(exc)) from None
    if len(clean_topics) > MAX_TOPICS:
        raise InvalidInput(f"Choose at most {MAX_TOPICS} topics.")
    clean_keywords: list[str] = []
    for keyword in keywords:
        keyword = " ".join(keyword.split())
        if not keyword:
            continue
        if len(keyword) > MAX_KEYWORD_LENGTH or not KEYWORD_PATTERN.match(keyword):
            raise InvalidInput(
                f"Keywords are words of at most {MAX_KEYWORD_LENGTH} characters, separated by commas."
            )
        if keyword.lower() not in (k.lower() for k in clean_keywords):
            clean_keywords.append(keyword)
    if len(clean_keywords) > MAX_KEYWORDS:
        raise InvalidInput(f"Use at most {MAX_KEYWORDS} keywords.")
    if not clean_topics and not clean_keywords:
        raise InvalidInput("Choose at least one topic or keyword.")
    try:
        chosen_frequency = Frequency(frequency)
    except ValueError:
        raise InvalidInput("Frequency must be weekly or daily.") from None
    weekday, hour = _int_in_range(send_weekday, 0, 6, "Send day"), _int_in_range(send_hour, 0, 23, "Hour")
    try:
        zone = validate_timezone(timezone.strip())
    except ValueError:
        raise InvalidInput("Unknown timezone; use a name like Europe/Berlin.") from None
    return Preferences(clean_topics, clean_keywords, chosen_frequency, weekday, hour, zone)


def _int_in_range(raw: int | str, low: int, high: int, what: str) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise InvalidInput(f"{what} must be a number.") from None
    if not low <= value <= high:
        raise InvalidInput(f"{what} must be between {low} and {high}.")
    return value


def preference_values(preferences: Preferences) -> dict[str, Any]:
    """The subscriber columns that hold ``preferences``, for inserts and updates alike."""
    return {
        "topics": list(preferences.topics),
        "keywords": list(preferences.keywords),
        "frequency": preferences.frequency,
        "send_weekday": preferences.send_weekday,
        "send_hour": preferences.send_hour,
        "timezone": preferences.timezone,
    }


def apply_preferences(subscriber: Subscriber, preferences: Preferences) -> None:
    """Store validated preferences on a subscriber."""
    for column, value in preference_values(preferences).items():
        setattr(subscriber, column, value)
    subscriber.preferences_changed_at = clock.now()


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


def unsubscribe(session: Session, subscriber: Subscriber, *, actor: str, reason: str | None = None) -> bool:
    """Unsubscribe; return False if there was nothing to change (idempotent)."""
    if subscriber.status in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED):
        return False
    subscriber.status = SubscriberStatus.UNSUBSCRIBED
    subscriber.unsubscribed_at = clock.now()
    audit.record(session, actor, "subscriber.unsubscribe", subscriber_id=subscriber.id, reason=reason)
    return True


def mark_bounced(session: Session, subscriber: Subscriber, *, reply: str) -> None:
    """A hard bounce: never mail this address again."""
    subscriber.status = SubscriberStatus.BOUNCED
    subscriber.hard_bounced_at = clock.now()
    suppress(session, subscriber.email, "bounce")
    audit.record(session, "system", "subscriber.bounce", subscriber_id=subscriber.id, reason=reply[:500])
