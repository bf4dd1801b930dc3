"""Web tasks: the confirmation email a signup owes (queued after commit, re-queued by the sweeper),
and looking up the seed papers a reader named on the preferences page."""

from __future__ import annotations

from celery import shared_task

from papermail import task_names, votes
from papermail.config import get_settings
from papermail.db import session_scope
from papermail.signup import send_confirmation as send_confirmation_email

BEAT_SCHEDULE: dict = {}


@shared_task(name=task_names.SEND_CONFIRMATION)
def send_confirmation(subscriber_id: int) -> dict[str, int]:
    """Send the confirmation email the subscriber is owed (once; skipped if no longer awaited)."""
    return send_confirmation_email(get_settings(), subscriber_id).counts()


@shared_task(name=task_names.LOOK_UP_PAPERS)
def look_up_papers(arxiv_ids: list[str]) -> dict[str, str]:
    """Fetch seed papers named on the preferences page from the arXiv API; return those not found."""
    settings = get_settings()
    with session_scope(settings) as session:
        return votes.look_up_papers(session, settings, arxiv_ids)
