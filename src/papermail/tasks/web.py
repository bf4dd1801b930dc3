"""Web tasks: the confirmation email a signup owes (queued after commit, re-queued by the sweeper)."""

from __future__ import annotations

from celery import shared_task

from papermail import task_names
from papermail.config import get_settings
from papermail.signup import send_confirmation as send_confirmation_email

BEAT_SCHEDULE: dict = {}


@shared_task(name=task_names.SEND_CONFIRMATION)
def send_confirmation(subscriber_id: int) -> dict[str, int]:
    """Send the confirmation email the subscriber is owed (once; skipped if no longer awaited)."""
    return send_confirmation_email(get_settings(), subscriber_id).counts()
