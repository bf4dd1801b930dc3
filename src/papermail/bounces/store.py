"""Keeping what came back: each inbound message is stored raw before anything reads it.

Messages that arrive together (by SMTP or IMAP) are stored in one statement, with one processing
task for them all: queueing is a large part of a message's cost, and the pipeline processes several
reports in one pass. The task is queued after the commit; if it is lost or fails, the messages stay
waiting and the inbound sweep processes them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail import clock, task_names
from papermail.celery_app import enqueue_after_commit
from papermail.config import Settings
from papermail.db import session_scope
from papermail.db.models import BounceEvent, InboundMessage

VIA = ("smtp", "imap", "import", "webhook")
# The raw report is kept for inspection, up to this much: a DSN's own parts and the headers of
# the message it returns come first, and only an attached digest body can be cut.
MAX_STORED_BYTES = 1_000_000
KEEP_RAW = timedelta(days=90)
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(<[^>\r\n]{1,250}>)", re.IGNORECASE | re.MULTILINE)
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def report_key(raw: bytes) -> str:
    """The report's Message-ID (its own, not the returned message's), or a hash of its bytes."""
    end = _HEADER_END.search(raw)
    head = raw[: end.start()] if end else raw[:65536]
    found = _MESSAGE_ID.search(head)
    if found:
        return found.group(1).decode("ascii", "replace").lower()
    return "sha256:" + hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class Received:
    """One message as it came in, waiting to be stored."""

    raw: bytes
    sender: str | None = None  # the envelope sender; None for a report's empty return path "<>"
    recipient: str | None = None  # the envelope recipient (our VERP address), when known


def store_and_commit(settings: Settings, messages: list[Received], *, via: str) -> list[int]:
    """Store messages that arrived together in one transaction and commit; their ids, in order."""
    with session_scope(settings) as session:
        return store_group(session, messages, via=via)


def store_group(session: Session, messages: list[Received], *, via: str) -> list[int]:
    """Add the messages in one statement (the caller commits); one task processes them after the commit."""
    ids = insert_inbound_messages(session, messages, via=via)
    if ids:
        enqueue_after_commit(session, task_names.PROCESS_INBOUND_GROUP, ids)
    return ids


def store_inbound_messages(session: Session, raws: list[bytes], *, via: str) -> list[InboundMessage]:
    """Add several messages in one INSERT, for the caller to process at once (``bounces import``)."""
    messages = [InboundMessage(**_columns(raw, via, None, None)) for raw in raws]
    session.add_all(messages)
    session.flush()
    return messages


def insert_inbound_messages(session: Session, messages: Sequence[Received], *, via: str) -> list[int]:
    """Add the messages in one statement, queueing nothing; their ids, in order.

    No ORM objects and no flush per row: the inbound server stores many small groups, and those
    were most of its writer's time. The caller commits and queues the processing.
    """
    if not messages:
        return []
    rows = [_columns(m.raw, via, m.sender, m.recipient) for m in messages]
    insert = sa.insert(InboundMessage.__table__).returning(
        InboundMessage.__table__.c.id, sort_by_parameter_order=True
    )
    return list(session.scalars(insert, rows))


def _columns(raw: bytes, via: str, envelope_sender: str | None, envelope_recipient: str | None) -> dict:
    if via not in VIA:
        raise ValueError(f"via must be one of {', '.join(VIA)}, got {via!r}")
    if not isinstance(raw, bytes):
        raise TypeError(f"raw must be bytes, got {type(raw).__name__}")
    return {
        "received_at": clock.now(),
        "via": via,
        "envelope_sender": storable(envelope_sender, 320),
        "envelope_recipient": storable(envelope_recipient, 320),
        "report_key": report_key(raw),
        "size": len(raw),
        "raw": raw[:MAX_STORED_BYTES],
        "state": "received",
    }


def storable(text: str | None, limit: int | None = None) -> str | None:
    """``text`` without NUL (PostgreSQL's text can't hold it), cut to ``limit``; None for None or ""."""
    return text.replace("\0", "")[:limit] if text else None


def waiting_message_ids(session: Session, older_than: timedelta, limit: int = 1000) -> list[int]:
    """Messages stored but not processed after ``older_than``: their queue message was lost."""
    query = (
        sa.select(InboundMessage.id)
        .where(InboundMessage.state == "received", InboundMessage.received_at < clock.now() - older_than)
        .order_by(InboundMessage.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def purge_old_messages(session: Session) -> int:
    """Delete raw reports older than 90 days; their verdicts stay (detached from the raw bytes)."""
    cutoff = clock.now() - KEEP_RAW
    old = sa.select(InboundMessage.id).where(InboundMessage.received_at < cutoff)
    session.execute(
        sa.update(BounceEvent)
        .where(BounceEvent.inbound_message_id.in_(old))
        .values(inbound_message_id=None)
        .execution_options(synchronize_session=False)
    )
    result = session.execute(
        sa.delete(InboundMessage)
        .where(InboundMessage.received_at < cutoff)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
