"""Bounce tasks: processing a stored inbound message, and the sweep that finds lost ones."""

from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa
from celery import shared_task
from celery.schedules import crontab

from papermail import task_names
from papermail.bounces import process_inbound_message as process_message
from papermail.bounces.store import purge_old_messages, waiting_message_ids
from papermail.config import get_settings
from papermail.db import session_scope

log = logging.getLogger(__name__)

# A stored message still waiting after this long lost its queue message (or its worker died).
LOST_AFTER = timedelta(minutes=5)
BEAT_SCHEDULE: dict = {
    "sweep-inbound-messages": {
        "task": task_names.SWEEP_INBOUND_MESSAGES,
        "schedule": crontab(minute="*/5"),
    },
}


@shared_task(name=task_names.PROCESS_INBOUND_MESSAGE)
def process_inbound_message(message_id: int) -> str:
    """Read one stored inbound message and act on it (a second run changes nothing)."""
    settings = get_settings()
    try:
        with session_scope(settings) as session:
            return process_message(session, message_id, settings=settings).kind.value
    except sa.exc.IntegrityError:
        # Another worker processed the same message (or a copy of its report) at the same moment and
        # committed first; its verdicts stand and this transaction changed nothing.
        log.info("inbound message %s was processed concurrently", message_id)
        return "already-processed"


@shared_task(name=task_names.SWEEP_INBOUND_MESSAGES)
def sweep_inbound_messages() -> int:
    """Process messages whose queue message was lost, each in its own transaction; purge old raw ones."""
    settings = get_settings()
    with session_scope(settings) as session:
        waiting = waiting_message_ids(session, LOST_AFTER)
        purged = purge_old_messages(session)
    for message_id in waiting:
        with session_scope(settings) as session:
            process_message(session, message_id, settings=settings)
    if waiting or purged:
        log.warning("processed %d lost inbound messages, purged %d older than 90 days", len(waiting), purged)
    return len(waiting)
