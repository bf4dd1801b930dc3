"""Subscriber CSV files: reading and applying an import, writing an export (the same format).

An import is checked row by row before anything is written, so every problem is reported at once;
applying it follows the same consent rules as ``subscribers add``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, TextIO

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail import audit, clock
from papermail.admin import AdminError
from papermail.admin.csv_cells import neutralise_cell, restore_cell
from papermail.admin.subscribers import (
    current_preferences,
    iter_subscribers,
    merge_preferences,
    subscriber_record,
)
from papermail.db.models import Subscriber, SubscriberStatus, Suppression
from papermail.subscribers import (
    InvalidInput,
    Preferences,
    apply_preferences,
    email_hash,
    mark_bounced,
    normalise_email,
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


class InvalidFile(AdminError):
    """The import file as a whole can't be read (no email column, not CSV)."""


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
