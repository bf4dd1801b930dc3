"""``bounces import``: reports from files, Maildirs and mboxes, through the same pipeline as the rest.

Each message is stored (``via="import"``) and processed at once, in one transaction per command;
``--dry-run`` runs the very same code and rolls it back, so it shows exactly what would happen.
"""

from __future__ import annotations

import mailbox
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail.bounces.outcome import ProcessResult
from papermail.bounces.process import process_stored_messages
from papermail.bounces.store import store_inbound_messages
from papermail.config import Settings
from papermail.db.models import BounceEvent, InboundMessage

# Messages stored and processed together: a few queries per chunk instead of several per message.
CHUNK = 500
T = TypeVar("T")


class UnreadablePath(ValueError):
    """A path that is neither a message file, a Maildir nor an mbox."""


def iter_messages(path: Path) -> Iterator[tuple[str, bytes]]:
    """``(source, raw bytes)`` of each message at ``path``: a Maildir, an mbox, or one message."""
    if path.is_dir():
        if not all((path / sub).is_dir() for sub in ("cur", "new")):
            raise UnreadablePath(f"{path}: a directory that is not a Maildir (no cur/ and new/)")
        box = mailbox.Maildir(path, factory=None, create=False)
        for key in sorted(box.keys()):
            with box.get_file(key) as handle:
                yield f"{path}/{key}", handle.read()
        return
    if not path.is_file():
        raise UnreadablePath(f"{path}: no such file or directory")
    with path.open("rb") as handle:
        first_line = handle.readline()
    if first_line.startswith(b"From "):
        box = mailbox.mbox(path, create=False)
        try:
            for number, key in enumerate(box.keys(), 1):
                yield f"{path}#{number}", box.get_bytes(key)
        finally:
            box.close()
        return
    yield str(path), path.read_bytes()


@dataclass
class ImportReport:
    """Every message read, with what came of it."""

    messages: list[tuple[str, ProcessResult]] = field(default_factory=list)

    def totals(self) -> dict[str, Any]:
        kinds = Counter(result.kind.value for _, result in self.messages)
        actions = Counter(r.action.value for _, result in self.messages for r in result.recipients)
        verdicts = Counter(r.verdict.value for _, result in self.messages for r in result.recipients)
        return {
            "messages": len(self.messages),
            "kinds": dict(sorted(kinds.items())),
            "verdicts": dict(sorted(verdicts.items())),
            "actions": dict(sorted(actions.items())),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "messages": [
                {
                    "source": source,
                    "kind": result.kind.value,
                    "recipients": [recipient.as_json() for recipient in result.recipients],
                }
                for source, result in self.messages
            ],
            "totals": self.totals(),
        }


def import_paths(session: Session, settings: Settings, paths: list[Path]) -> ImportReport:
    """Store and process every message at these paths (the caller commits or rolls back)."""
    for path in paths:  # a typo in the last path must not leave the first ones half imported
        if not path.exists():
            raise UnreadablePath(f"{path}: no such file or directory")
    report = ImportReport()
    for chunk in _chunks((item for path in paths for item in iter_messages(path)), CHUNK):
        sources, raws = zip(*chunk, strict=True)
        stored = store_inbound_messages(session, list(raws), via="import")
        results = process_stored_messages(session, stored, settings=settings)
        report.messages.extend(zip(sources, results, strict=True))
        for message in list(session.identity_map.values()):  # done with their bytes: let memory go
            if isinstance(message, InboundMessage):
                session.expunge(message)
    return report


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def list_events(session: Session, limit: int = 50) -> list[BounceEvent]:
    """The latest verdicts, newest first."""
    return list(session.scalars(sa.select(BounceEvent).order_by(BounceEvent.id.desc()).limit(limit)))


def event_with_message(session: Session, event_id: int) -> tuple[BounceEvent, InboundMessage | None]:
    """One verdict and the raw report it came from (None once purged, or for a webhook event)."""
    event = session.get(BounceEvent, event_id)
    if event is None:
        raise LookupError(f"no bounce event {event_id}")
    message = session.get(InboundMessage, event.inbound_message_id) if event.inbound_message_id else None
    return event, message
