"""Subscriber administration: list, add, remove, erase (GDPR), and CSV import and export.

Every operation is safe to repeat. Adding an address that exists updates it or changes nothing;
removing an unsubscribed address changes nothing; erasing an erased address says it is gone. Consent
always wins: nothing here re-activates someone who unsubscribed unless the admin says they confirmed,
and an address on the suppression list is never added back.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, TextIO

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail import audit, clock
from papermail.admin import AdminError, NotFound, Refused
from papermail.admin.csv_cells import neutralise_cell, restore_cell
from papermail.db.models import (
    AuditLog,
    Delivery,
    RateLimitHit,
    Subscriber,
    SubscriberStatus,
    Suppression,
)
from papermail.subscribers import (
    InvalidInput,
    Preferences,
    apply_preferences,
    email_hash,
    find_by_email,
    mark_bounced,
    normalise_email,
    parse_preferences,
    preference_values,
    suppress,
    unsubscribe,
)

# Topics and keywords share one CSV cell each, separated like this (keywords may contain spaces).
CELL_SEPARATOR = ";"
_CELL_SPLIT = re.compile(r"[;,]")
EXPORT_COLUMNS = (
    "email",
    "status",
    "topics",
    "keywords",
    "frequency",
    "send_weekday",
    "send_hour",
    "timezone",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
)
PREFERENCE_COLUMNS = ("topics", "keywords", "frequency", "send_weekday", "send_hour", "timezone")
IMPORT_STATUSES = {
    "active": SubscriberStatus.ACTIVE,
    "confirmed": SubscriberStatus.ACTIVE,
    "pending": SubscriberStatus.PENDING,
    "unsubscribed": SubscriberStatus.UNSUBSCRIBED,
    "bounced": SubscriberStatus.BOUNCED,
}
# Addresses looked up per query during an import: large enough to be bulk, small enough for any
# database's bound-parameter limit.
IMPORT_CHUNK = 500
ERASED_MARK = "[erased]"
RATE_KEY_HASH_CHARS = 32  # the web's per-address limit keys: "<kind>:<first 32 hex of the hash>"


class InvalidFile(AdminError):
    """The import file as a whole can't be read (no email column, not CSV)."""


# -- reading --------------------------------------------------------------------------------------


def iter_subscribers(session: Session, status: SubscriberStatus | None = None) -> Iterator[Subscriber]:
    """Subscribers in id order, streamed in chunks so a large list never sits in memory."""
    query = sa.select(Subscriber).order_by(Subscriber.id).execution_options(yield_per=1000)
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
    }


def suppression_reason(session: Session, email: str) -> str | None:
    """Why this address is suppressed ("bounce", "erased", …), or None if it isn't."""
    return session.scalar(sa.select(Suppression.reason).where(Suppression.email_hash == email_hash(email)))


def get_subscriber(session: Session, email: str) -> Subscriber:
    """The subscriber with this normalised address, or NotFound("no subscriber x@y")."""
    subscriber = find_by_email(session, email)
    if subscriber is None:
        raise NotFound(f"no subscriber {email}")
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
        raise NotFound(f"no subscriber {email}")
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
        raise NotFound(f"no subscriber {email}")
    # Suppress first, in the same transaction: if anything below fails, nothing is erased.
    suppress(session, email, "erased")
    scrubbed = _scrub_audit_rows(session, subscriber.id, email)
    deliveries = session.execute(sa.delete(Delivery).where(Delivery.subscriber_id == subscriber.id)).rowcount
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


# -- CSV import -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportRow:
    """One valid CSV row: the address, the preference values it gives, and the status to aim for."""

    line: int
    email: str
    given: dict[str, Any]  # only the preference columns the row fills: they override existing values
    status: SubscriberStatus
    as_new: Preferences  # the row's preferences with the defaults, for an address that is new


@dataclass(frozen=True)
class BadRow:
    """A row that can't be imported, with its line number in the file and why."""

    line: int
    problem: str


@dataclass
class ImportFile:
    """The result of checking every row of an import file."""

    rows: list[ImportRow] = field(default_factory=list)
    bad_rows: list[BadRow] = field(default_factory=list)


def read_import_file(
    stream: TextIO,
    *,
    confirmed: bool,
    default_topics: Sequence[str],
    on_progress: Callable[[int], None] | None = None,
) -> ImportFile:
    """Check every row of a subscriber CSV (``email`` column required; others as in the export)."""
    reader = csv.reader(stream)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise InvalidFile(f"line 1: {exc}") from None
    if header is None:
        raise InvalidFile("the file is empty")
    names = [name.strip().lower() for name in header]
    if "email" not in names:
        raise InvalidFile(f"no 'email' column in the header (found: {', '.join(names) or 'nothing'})")
    checked = ImportFile()
    first_line: dict[str, int] = {}
    while True:
        try:
            record = next(reader, None)
        except csv.Error as exc:
            raise InvalidFile(f"line {reader.line_num}: {exc}") from None
        if record is None:
            return checked
        if on_progress and reader.line_num % IMPORT_CHUNK == 0:
            on_progress(IMPORT_CHUNK)
        if not any(cell.strip() for cell in record):
            continue
        line = reader.line_num
        if len(record) > len(names):
            checked.bad_rows.append(BadRow(line, f"{len(record)} fields, but the header has {len(names)}"))
            continue
        try:
            cells = [restore_cell(cell) for cell in record]
            row = _check_row(dict(zip(names, cells, strict=False)), line, confirmed, default_topics)
        except InvalidInput as exc:
            checked.bad_rows.append(BadRow(line, str(exc)))
            continue
        if row.email in first_line:
            checked.bad_rows.append(BadRow(line, f"{row.email} is already on line {first_line[row.email]}"))
            continue
        first_line[row.email] = line
        checked.rows.append(row)


def _check_row(
    values: dict[str, str], line: int, confirmed: bool, default_topics: Sequence[str]
) -> ImportRow:
    email = normalise_email(values.get("email", ""))
    raw_status = values.get("status", "").strip().lower()
    if raw_status and raw_status not in IMPORT_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(IMPORT_STATUSES)}, got {raw_status!r}")
    default_status = SubscriberStatus.ACTIVE if confirmed else SubscriberStatus.PENDING
    status = IMPORT_STATUSES.get(raw_status, default_status)
    given: dict[str, Any] = {}
    for name in PREFERENCE_COLUMNS:
        raw = values.get(name, "").strip()
        if raw:
            given[name] = _CELL_SPLIT.split(raw) if name in ("topics", "keywords") else raw
    # Validated now, so every problem is reported before anything is written.
    return ImportRow(
        line, email, given, status, merge_preferences(None, given, default_topics=default_topics)
    )


@dataclass
class ImportReport:
    """What an import did, row by row, in counts."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    # Listed as active, but they unsubscribed here: their opt-out wins over the file.
    kept_unsubscribed: int = 0
    suppressed: int = 0  # on the suppression list: never added back

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def apply_import(
    session: Session,
    rows: Sequence[ImportRow],
    *,
    actor: str,
    source: str,
    on_progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Add or update the subscribers of checked rows: per chunk, two lookups and one bulk insert."""
    report = ImportReport()
    now = clock.now()
    for start in range(0, len(rows), IMPORT_CHUNK):
        chunk = rows[start : start + IMPORT_CHUNK]
        emails = [row.email for row in chunk]
        existing = {
            s.email: s for s in session.scalars(sa.select(Subscriber).where(Subscriber.email.in_(emails)))
        }
        hashes = [email_hash(email) for email in emails]
        suppressed = set(
            session.scalars(sa.select(Suppression.email_hash).where(Suppression.email_hash.in_(hashes)))
        )
        new_rows = []
        for row, hashed in zip(chunk, hashes, strict=True):
            if hashed in suppressed:
                report.suppressed += 1
            elif row.email in existing:
                _update_from_row(session, existing[row.email], row, report, actor)
            else:
                new_rows.append(_new_subscriber_values(row, now))
        if new_rows:
            session.execute(sa.insert(Subscriber), new_rows)
            report.added += len(new_rows)
        session.flush()
        if on_progress:
            on_progress(len(chunk))
    for row in rows:
        if row.status == SubscriberStatus.BOUNCED:
            suppress(session, row.email, "bounce")
    audit.record(session, actor, "subscriber.import", source=source, **report.as_dict())
    return report


def _new_subscriber_values(row: ImportRow, now: datetime) -> dict[str, Any]:
    """The column values of a subscriber created from an import row."""
    return {
        "email": row.email,
        "status": row.status,
        "created_at": now,
        "confirmed_at": now if row.status == SubscriberStatus.ACTIVE else None,
        "unsubscribed_at": now if row.status == SubscriberStatus.UNSUBSCRIBED else None,
        "hard_bounced_at": now if row.status == SubscriberStatus.BOUNCED else None,
        **preference_values(row.as_new),
        "preferences_changed_at": now,
    }


def _update_from_row(
    session: Session,
    subscriber: Subscriber,
    row: ImportRow,
    report: ImportReport,
    actor: str,
) -> None:
    before = current_preferences(subscriber)
    after = merge_preferences(before, row.given, default_topics=())
    changed = before != after
    if changed:
        apply_preferences(subscriber, after)
    current, target = subscriber.status, row.status
    if target == SubscriberStatus.ACTIVE and current == SubscriberStatus.PENDING:
        subscriber.status, subscriber.confirmed_at = SubscriberStatus.ACTIVE, clock.now()
        changed = True
    elif target == SubscriberStatus.ACTIVE and current == SubscriberStatus.UNSUBSCRIBED:
        report.kept_unsubscribed += 1
    elif target == SubscriberStatus.UNSUBSCRIBED:
        changed = unsubscribe(session, subscriber, actor=actor, reason="import") or changed
    elif target == SubscriberStatus.BOUNCED and current != SubscriberStatus.BOUNCED:
        mark_bounced(session, subscriber, reply="imported as bounced")
        changed = True
    if changed:
        report.updated += 1
    else:
        report.unchanged += 1


# -- CSV export -----------------------------------------------------------------------------------


def write_export(
    session: Session,
    stream: TextIO,
    status: SubscriberStatus | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Write subscribers as CSV (the import format); return how many rows were written."""
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for subscriber in iter_subscribers(session, status):
        record = subscriber_record(subscriber)
        writer.writerow([neutralise_cell(_cell(record[name])) for name in EXPORT_COLUMNS])
        count += 1
        if on_progress and count % IMPORT_CHUNK == 0:
            on_progress(IMPORT_CHUNK)
    return count


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return CELL_SEPARATOR.join(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
