"""Web tasks: deciding recorded signups, the confirmation email they may owe, and looking up the
seed papers a reader named on the preferences page."""

from __future__ import annotations

import logging

from celery import shared_task

from papermail import task_names
from papermail.config import get_settings
from papermail.db import session_scope, writer_session_factory
from papermail.db.session import with_lock_retries
from papermail.signup.confirmations import send_confirmation as send_confirmation_email
from papermail.signup.limits import limiter_for
from papermail.signup.requests import process_request, waiting_request_ids
from papermail.sources import lookups
from papermail.subscribers.preferences import send_preferences_link as send_preferences_link_email

log = logging.getLogger(__name__)

SWEEP_SIGNUPS_EVERY = 60.0  # seconds
BEAT_SCHEDULE: dict = {
    "sweep-signup-requests": {"task": task_names.SWEEP_SIGNUP_REQUESTS, "schedule": SWEEP_SIGNUPS_EVERY},
}


@shared_task(name=task_names.SEND_CONFIRMATION)
def send_confirmation(subscriber_id: int) -> dict[str, int]:
    """Send the confirmation email the subscriber is owed (once; skipped if no longer awaited)."""
    return send_confirmation_email(get_settings(), subscriber_id).counts()


@shared_task(name=task_names.PROCESS_SIGNUP)
def process_signup(request_id: int) -> str | None:
    """Decide what a recorded signup means and owe its confirmation if one is due."""
    settings = get_settings()
    limiter = limiter_for(settings)
    # Takes the write lock up front, and a lost race is re-run at once rather than by the sweeper.
    outcome = with_lock_retries(
        writer_session_factory(settings),
        lambda session: process_request(session, settings, request_id, limiter),
    )
    return outcome.value if outcome else None


@shared_task(name=task_names.SWEEP_SIGNUP_REQUESTS)
def sweep_signup_requests() -> int:
    """Process signups whose queue message was lost; each in its own transaction."""
    settings = get_settings()
    limiter = limiter_for(settings)
    with session_scope(settings) as session:
        waiting = waiting_request_ids(session)
    for request_id in waiting:
        with session_scope(settings) as session:
            process_request(session, settings, request_id, limiter)
    if waiting:
        log.warning("swept %d signup requests whose queue message was lost", len(waiting))
    return len(waiting)


@shared_task(name=task_names.LOOK_UP_PAPERS)
def look_up_papers(arxiv_ids: list[str]) -> dict[str, str]:
    """Fetch seed papers named on the preferences page from the arXiv API; return those not found."""
    settings = get_settings()
    with session_scope(settings) as session:
        return lookups.look_up_papers(session, settings, arxiv_ids)


@shared_task(name=task_names.SEND_PREFERENCES_LINK)
def send_preferences_link(subscriber_id: int) -> str | None:
    """Mail a subscriber the fresh preferences link they asked for from a digest's web page."""
    return send_preferences_link_email(get_settings(), subscriber_id)
