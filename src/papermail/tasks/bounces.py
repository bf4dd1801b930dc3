"""Bounce tasks: the sweep that processes stored inbound messages whose queue message was lost."""

from __future__ import annotations

import logging
from datetime import timedelta

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
