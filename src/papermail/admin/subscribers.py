"""Subscriber administration: list, add, remove and erase (GDPR); CSV files are in ``subscriber_csv``.

Every operation is safe to repeat. Adding an address that exists updates it or changes nothing;
removing an unsubscribed address changes nothing; erasing an erased address says it is gone. Consent
always wins: nothing here re-activates someone who unsubscribed unless the admin says they confirmed,
and an address on the suppression list is never added back.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from papermail import clock
from papermail.admin import NotFound, Refused
from papermail.db import audit
from papermail.db.bookkeeping import AuditLog, RateLimitHit, SignupRequest
from papermail.db.models import Delivery, Subscriber, SubscriberStatus, Suppression
from papermail.redaction import email_hash
from papermail.subscribers.core import find_by_email, suppress
from papermail.subscribers.preferences import Preferences, apply_preferences, parse_preferences
from papermail.subscribers.unsubscribe import unsubscribe

ERASED_MARK = "[erased]"
RATE_KEY_HASH_CHARS = 32  # the web's per-address limit keys: "<kind>:<first 32 hex of the hash>"


# -- reading --------------------------------------------------------------------------------------


def iter_subscribers(session: Session, status: SubscriberStatus | None = None) -> Iterator[Subscriber]:
    """Subscribers in id order, streamed in chunks so a large list never sits in memory."""
    query = (
        sa.select(Subscriber)
        .options(selectinload(Subscriber.votes))
        .order_by(Subscriber.id)
        .execution_options(yield_per=1000)
    )
    if status is not None:
        query = query.where(Subscriber.status == status)
    return iter(session.scalars(query))


def subscriber_record(subscriber: Subscriber) -> dict[str, Any]:
    """A subscriber as plain values (for JSON and CSV)."""
    return {
        "email": subscriber.email,
        "status": subscriber.status.value,
        "topics": list(subscriber.topics),
        "keywords": list(subscriber.keywords),
        "frequency": subscriber.frequency.value,
        "send_weekday": subscriber.send_weekday,
        "send_hour": subscriber.send_hour,
        "timezone": subscriber.timezone,
        "created_at": subscriber.created_at,
        "confirmed_at": subscriber.confirmed_at,
        "unsubscribed_at": subscriber.unsubscribed_at,
        "relevance_mix": subscriber.relevance_mix,
        # Votes and seeds are the reader's data too (docs/relevance.md): arXiv ids, by sign.
        "likes": [vote.arxiv_id for vote in subscriber.votes if vote.value > 0],
        "dislikes": [vote.arxiv_id for vote in subscriber.votes if vote.value < 0],
    }


def suppression_reason(session: Session, email: str) -> str | None:
    """Why this address is suppressed ("bounce", "erased", …), or None if it isn't."""
    return session.scalar(sa.select(Suppression.reason).where(Suppression.email_hash == email_hash(email)))


def no_subscriber(email: str) -> str:
    """The refusal for an unknown address, naming the two ways on."""
    return (
        f"no subscriber {email}; see who is there with `papermail subscribers list`, "
        f"or add them with `papermail subscribers add {email}`"
    )


def get_subscriber(session: Session, email: str) -> Subscriber:
    """The subscriber with this normalised address, or NotFound naming the way on."""
    subscriber = find_by_email(session, email)
    if subscriber is None:
        raise NotFound(no_subscriber(email))
    return subscriber


# -- preferences ----------------------------------------------------------------------------------


def current_preferences(subscriber: Subscriber) -> Preferences:
    """A subscriber's stored preferences."""
    return Preferences(
        topics=list(subscriber.topics),
        keywords=list(subscriber.keywords),
        frequency=subscriber.frequency,
        send_weekday=subscriber.send_weekday,
        send_hour=subscriber.send_hour,
        timezone=subscriber.timezone,
    )


def merge_preferences(
    current: Preferences | None, given: dict[str, Any], *, default_topics: Sequence[str]
) -> Preferences:
    """Validated preferences: the ``given`` values over ``current`` (or over the defaults for a new one).

    ``given`` holds only what the admin or the CSV row said; topics default to ``default_topics``
    for a new subscriber who named neither topics nor keywords.
    """
    base = current or Preferences()
    values: dict[str, Any] = {f.name: getattr(base, f.name) for f in fields(Preferences)}
    if current is None and not given.get("topics") and not given.get("keywords"):
        values["topics"] = list(default_topics)
    values.update({name: value for name, value in given.items() if value is not None})
    return parse_preferences(**values)


def describe_changes(before: Preferences, after: Preferences) -> list[str]:
    """One "field: old → new" line per preference that differs."""
    lines = []
    for f in fields(Preferences):
        old, new = getattr(before, f.name), getattr(after, f.name)
        if old != new:
            lines.append(f"{f.name}: {_shown(old)} → {_shown(new)}")
    return lines


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(value) or "(none)"
    return str(value)


# -- add, remove, erase ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AddResult:
    """What ``add_subscriber`` did: created, or the list of changes (empty when nothing changed)."""

    subscriber: Subscriber
    created: bool
    changes: tuple[str, ...] = ()


def _refuse_if_suppressed(session: Session, email: str) -> None:
    reason = suppression_reason(session, email)
    if reason is not None:
        raise Refused(f"{email} is on the suppression list ({reason}); papermail will never mail it again")


def add_subscriber(
    session: Session,
    email: str,
    given: dict[str, Any],
    *,
    confirmed: bool,
    actor: str,
    default_topics: Sequence[str],
) -> AddResult:
    """Add a subscriber, or update an existing one's preferences (and confirm them with ``confirmed``)."""
    _refuse_if_suppressed(session, email)
    subscriber = find_by_email(session, email)
    now = clock.now()
    if subscriber is None:
        preferences = merge_preferences(None, given, default_topics=default_topics)
        subscriber = Subscriber(
            email=email,
            status=SubscriberStatus.ACTIVE if confirmed else SubscriberStatus.PENDING,
            created_at=now,
            confirmed_at=now if confirmed else None,
        )
        apply_preferences(subscriber, preferences)
        session.add(subscriber)
        session.flush()
        audit.record(session, actor, "subscriber.add", subscriber_id=subscriber.id, confirmed=confirmed)
        return AddResult(subscriber, created=True)
    if subscriber.status == SubscriberStatus.BOUNCED:
        raise Refused(f"{email} hard-bounced; papermail will never mail it again")
    before = current_preferences(subscriber)
    after = merge_preferences(before, given, default_topics=default_topics)
    changes = describe_changes(before, after)
    if changes:
        apply_preferences(subscriber, after)
    if confirmed and subscriber.status != SubscriberStatus.ACTIVE:
        changes.append(f"status: {subscriber.status.value} → active")
        subscriber.status = SubscriberStatus.ACTIVE
        subscriber.confirmed_at = now
        subscriber.unsubscribed_at = None
    if changes:
        audit.record(session, actor, "subscriber.update", subscriber_id=subscriber.id, changes=changes)
    return AddResult(subscriber, created=False, changes=tuple(changes))


@dataclass(frozen=True)
class RemoveResult:
    """What ``remove_subscriber`` did; ``changed`` is False when it was already unsubscribed or gone."""

    email: str
    changed: bool
    status: str


def remove_subscriber(session: Session, email: str, *, actor: str, reason: str | None = None) -> RemoveResult:
    """Unsubscribe an address (idempotent)."""
    subscriber = find_by_email(session, email)
    if subscriber is None:
        if suppression_reason(session, email) == "erased":
            return RemoveResult(email, changed=False, status="erased")
        raise NotFound(no_subscriber(email))
    changed = unsubscribe(session, subscriber, actor=actor, reason=reason)
    return RemoveResult(email, changed=changed, status=subscriber.status.value)


@dataclass(frozen=True)
class EraseResult:
    """What ``erase_subscriber`` removed; ``already_erased`` when a previous run did it."""

    email: str
    already_erased: bool
    deliveries: int = 0
    audit_rows_scrubbed: int = 0


def erase_subscriber(session: Session, email: str, *, actor: str, reason: str | None = None) -> EraseResult:
    """Erase an address's personal data (GDPR), keeping only its hash on the suppression list."""
    subscriber = find_by_email(session, email)
    if subscriber is None:
        if suppression_reason(session, email) == "erased":
            return EraseResult(email, already_erased=True)
        raise NotFound(no_subscriber(email))
    # Suppress first, in the same transaction: if anything below fails, nothing is erased.
    suppress(session, email, "erased")
    scrubbed = _scrub_audit_rows(session, subscriber.id, email)
    deliveries = session.execute(sa.delete(Delivery).where(Delivery.subscriber_id == subscriber.id)).rowcount
    # A form posted but not yet processed still holds the address in clear.
    session.execute(sa.delete(SignupRequest).where(SignupRequest.email == email))
    # Per-address rate-limit keys carry the address or (the web's) a prefix of its hash.
    session.execute(
        sa.delete(RateLimitHit).where(
            sa.or_(
                RateLimitHit.key.contains(email, autoescape=True),
                RateLimitHit.key.contains(email_hash(email)[:RATE_KEY_HASH_CHARS]),
            )
        )
    )
    session.delete(subscriber)
    session.flush()
    audit.record(session, actor, "subscriber.erase", reason=reason, email_hash=email_hash(email))
    return EraseResult(email, already_erased=False, deliveries=deliveries, audit_rows_scrubbed=scrubbed)


def _scrub_audit_rows(session: Session, subscriber_id: int, email: str) -> int:
    """Remove the address from this subscriber's audit rows (SMTP replies often quote it)."""
    scrubbed = 0
    for row in session.scalars(sa.select(AuditLog).where(AuditLog.subscriber_id == subscriber_id)):
        reason = row.reason.replace(email, ERASED_MARK) if row.reason else row.reason
        details = _replace_in(row.details, email)
        if reason != row.reason or details != row.details:
            row.reason, row.details = reason, details
            scrubbed += 1
    return scrubbed


def _replace_in(value: Any, email: str) -> Any:
    if isinstance(value, str):
        return value.replace(email, ERASED_MARK)
    if isinstance(value, list):
        return [_replace_in(item, email) for item in value]
    if isinstance(value, dict):
        return {key: _replace_in(item, email) for key, item in value.items()}
    return value
