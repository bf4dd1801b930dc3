"""Web tasks: the confirmation email, sent after the signup transaction commits."""

from __future__ import annotations

import logging

from celery import shared_task

from papermail import signup_requests
from papermail.config import get_settings
from papermail.db import session_scope
from papermail.mail.backends import TransientSendError
from papermail.ratelimit import limiter_for
from papermail.signup import send_confirmation as send_confirmation_email

log = logging.getLogger(__name__)

SWEEP_SIGNUPS_EVERY = 60.0  # seconds
BEAT_SCHEDULE: dict = {
    "sweep-signup-requests": {"task": "papermail.sweep_signup_requests", "schedule": SWEEP_SIGNUPS_EVERY},
}


# Transient SMTP trouble retries a few times with backoff; every countdown stays well below
# celery_app.MAX_TASK_COUNTDOWN, so Redis never redelivers a waiting retry.
@shared_task(
    name="papermail.send_confirmation",
    autoretry_for=(TransientSendError,),
    retry_backoff=30,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
)
def send_confirmation(subscriber_id: int) -> bool:
    """Send a subscriber's confirmation email (skipped if they no longer await one)."""
    settings = get_settings()
    with session_scope(settings) as session:
        return send_confirmation_email(session, settings, subscriber_id)


@shared_task(name=signup_requests.PROCESS_SIGNUP_TASK)
def process_signup(request_id: int) -> str | None:
    """Decide what a recorded signup means and queue its confirmation if one is due."""
    settings = get_settings()
    with session_scope(settings) as session:
        outcome = signup_requests.process_request(session, settings, request_id, limiter_for(settings))
    return outcome.value if outcome else None


@shared_task(name="papermail.sweep_signup_requests")
def sweep_signup_requests() -> int:
    """Process signups whose queue message was lost; each in its own transaction."""
    settings = get_settings()
    limiter = limiter_for(settings)
    with session_scope(settings) as session:
        waiting = signup_requests.waiting_request_ids(session)
    for request_id in waiting:
        with session_scope(settings) as session:
            signup_requests.process_request(session, settings, request_id, limiter)
    if waiting:
        log.warning("swept %d signup requests whose queue message was lost", len(waiting))
    return len(waiting)
