"""Storing messages that arrived together (by SMTP or IMAP), with one processing task for them all.

One task per group rather than per message: queueing is a large part of a message's cost, and
the pipeline processes several reports in one pass. The task is queued after the commit; if it is
lost or fails, the messages stay waiting and the inbound sweep processes them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from papermail import task_names
from papermail.bounces.store import insert_inbound_messages
from papermail.celery_app import enqueue_after_commit


@dataclass(frozen=True)
class Received:
    """One message as it came in, waiting to be stored."""

    raw: bytes
    sender: str | None = None  # the envelope sender; None for a report's empty return path "<>"
    recipient: str | None = None  # the envelope recipient (our VERP address), when known


def store_group(session: Session, messages: list[Received], *, via: str) -> list[int]:
    """Add the messages in one statement (the caller commits); one task processes them after the commit."""
    ids = insert_inbound_messages(session, [(m.raw, m.sender, m.recipient) for m in messages], via=via)
    if ids:
        enqueue_after_commit(session, task_names.PROCESS_INBOUND_GROUP, ids)
    return ids
