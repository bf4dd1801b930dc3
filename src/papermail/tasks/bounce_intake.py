"""Intake tasks: polling the bounce mailbox on beat's schedule, and processing received groups.

The schedule has an entry only while the mailbox (``PAPERMAIL_BOUNCE_IMAP_URL``) is configured; it
is read from the settings when beat reads it, never at import time.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from papermail import task_names
from papermail.bounces import process_inbound_messages
from papermail.bounces.imap_intake import fetch_mailbox
from papermail.config import get_settings
from papermail.db import session_scope
from papermail.tasks.schedules import SettingsSchedule, cron_schedule

log = logging.getLogger(__name__)


class _MailboxSchedule(SettingsSchedule):
    """``BEAT_SCHEDULE``: a fetch on ``PAPERMAIL_BOUNCE_IMAP_CRON`` when a mailbox is set."""

    def _entries(self) -> dict[str, dict[str, Any]]:
        settings = get_settings()
        if settings.bounce_imap_url is None:
            return {}
        schedule = cron_schedule(settings.bounce_imap_cron)
        return {"fetch-bounce-mailbox": {"task": task_names.FETCH_BOUNCE_MAILBOX, "schedule": schedule}}


BEAT_SCHEDULE = _MailboxSchedule()


@shared_task(name=task_names.FETCH_BOUNCE_MAILBOX)
def fetch_bounce_mailbox() -> int:
    """Store the reports waiting in the bounce mailbox; each batch is then processed by one task."""
    result = fetch_mailbox(get_settings())
    if result.stored:
        log.info("bounce mailbox %s: stored %d messages", result.mailbox, len(result.stored))
    return len(result.stored)


@shared_task(name=task_names.PROCESS_INBOUND_GROUP)
def process_inbound_group(message_ids: list[int]) -> int:
    """Process messages stored together (by SMTP or IMAP) in one transaction; a rerun changes nothing.

    If it fails, the messages stay waiting and the inbound sweep processes them one by one.
    """
    settings = get_settings()
    with session_scope(settings) as session:
        return len(process_inbound_messages(session, message_ids, settings=settings))
