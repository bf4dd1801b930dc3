"""Subscriber CSV files: reading and applying an import, writing an export (the same format).

An import is checked row by row before anything is written, so every problem is reported at once;
applying it follows the same consent rules as ``subscribers add``. The likes and dislikes an export
lists are read back as votes; for an existing subscriber they are added to (or change) the votes
papermail holds, and a vote the file does not list is kept, like a preference column left empty.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, TextIO

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from papermail import clock
from papermail.admin import AdminError
from papermail.admin.csv_cells import neutralise_cell, restore_cell
from papermail.admin.subscribers import (
    current_preferences,
    iter_subscribers,
    merge_preferences,
    subscriber_record,
)
from papermail.db import audit
from papermail.db.models import Subscriber, SubscriberStatus, Suppression, Vote
from papermail.redaction import email_hash
from papermail.subscribers import votes
from papermail.subscribers.core import InvalidInput, mark_bounced, normalise_email, suppress
from papermail.subscribers.preferences import Preferences, apply_preferences, preference_values
from papermail.subscribers.unsubscribe import unsubscribe

# Topics and keywords share one CSV cell each, separated like this (keywords may contain spaces).
CELL_SEPARATOR = ";"
_CELL_SPLIT = re.compile(r"[;,]")
# arXiv ids in the likes and dislikes cells: the export's separator, or commas or spaces by hand.
_IDS_SPLIT = re.compile(r"[;,\s]+")
VOTE_COLUMNS = {"likes": votes.MORE, "dislikes": votes.LESS}
EXPORT_COLUMNS = (
    "email",
    "status",
    "topics",
    "keywords",
    "frequency",
    "send_weekday",
    "send_hour",
    "timezone",
    "relevance_mix",
    "likes",
    "dislikes",
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
    mix: int | None = None  # None when the row leaves relevance_mix empty
    votes: dict[str, int] = field(default_factory=dict)  # version-less arXiv id -> +1 or -1


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
    as_new = merge_preferences(None, given, default_topics=default_topics)
    return ImportRow(line, email, given, status, as_new, _check_mix(values), _check_votes(values))


def _check_mix(values: dict[str, str]) -> int | None:
    raw = values.get("relevance_mix", "").strip()
    if not raw:
        return None
    try:
        return votes.parse_mix(raw)
    except InvalidInput:
        raise InvalidInput(
            f"relevance_mix must be a whole number from 0 to {votes.MIX_STEPS - 1}, got {raw!r}"
        ) from None


def _check_votes(values: dict[str, str]) -> dict[str, int]:
    """The row's likes and dislikes as {version-less arXiv id: +1 or -1}."""
    given: dict[str, int] = {}
    for column, value in VOTE_COLUMNS.items():
        for ref in _IDS_SPLIT.split(values.get(column, "").strip()):
            if not ref:
                continue
            try:
                arxiv_id = votes.parse_paper_ref(ref)
            except InvalidInput as exc:
                raise InvalidInput(f"{column}: {exc}") from None
            if given.setdefault(arxiv_id, value) != value:
                raise InvalidInput(f"{arxiv_id} is in both likes and dislikes")
    return given


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
    """Add or update the subscribers of checked rows: per chunk, three lookups and two bulk inserts.

    Votes are stored as the file gives them, with no arXiv lookup: a vote may name a paper papermail
    has not fetched yet, and counts once it has (``votes``).
    """
    report = ImportReport()
    now = clock.now()
    for start in range(0, len(rows), IMPORT_CHUNK):
        chunk = rows[start : start + IMPORT_CHUNK]
        emails = [row.email for row in chunk]
        existing = {
            s.email: s
            for s in session.scalars(
                sa.select(Subscriber)
                .where(Subscriber.email.in_(emails))
                .options(selectinload(Subscriber.votes))
            )
        }
        hashes = [email_hash(email) for email in emails]
        suppressed = set(
            session.scalars(sa.select(Suppression.email_hash).where(Suppression.email_hash.in_(hashes)))
        )
        new_rows, added = [], []
        for row, hashed in zip(chunk, hashes, strict=True):
            if hashed in suppressed:
                report.suppressed += 1
            elif row.email in existing:
                _update_from_row(session, existing[row.email], row, report, actor)
            else:
                new_rows.append(_new_subscriber_values(row, now))
                added.append(row)
        if new_rows:
            session.execute(sa.insert(Subscriber), new_rows)
            report.added += len(new_rows)
            _insert_votes(session, added, now)
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
        "relevance_mix": votes.DEFAULT_MIX if row.mix is None else row.mix,
    }


def _insert_votes(session: Session, added: Sequence[ImportRow], now: datetime) -> None:
    """The votes of subscribers just added, in one lookup of their ids and one bulk insert."""
    voting = [row for row in added if row.votes]
    if not voting:
        return
    ids = dict(
        session.execute(
            sa.select(Subscriber.email, Subscriber.id).where(Subscriber.email.in_([r.email for r in voting]))
        ).all()
    )
    # The export does not say which votes came from a digest; an imported vote counts as a seed.
    session.execute(
        sa.insert(Vote),
        [
            {
                "subscriber_id": ids[row.email],
                "arxiv_id": arxiv_id,
                "value": value,
                "source": votes.FROM_SEED,
                "created_at": now,
                "updated_at": now,
            }
            for row in voting
            for arxiv_id, value in row.votes.items()
        ],
    )


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
    changed = _update_interests(session, subscriber, row) or changed
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


def _update_interests(session: Session, subscriber: Subscriber, row: ImportRow) -> bool:
    """Set the row's mix and record its votes that differ from the held ones; True if any did."""
    changed = row.mix is not None and votes.set_mix(subscriber, row.mix)
    held = {vote.arxiv_id: vote.value for vote in subscriber.votes}
    for arxiv_id, value in row.votes.items():
        if held.get(arxiv_id) != value:
            votes.record_vote(session, subscriber.id, arxiv_id, value, votes.FROM_SEED)
            changed = True
    return changed


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
