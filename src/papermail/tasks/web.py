"""Web tasks: the confirmation email, sent after the signup transaction commits."""

from __future__ import annotations

from celery import shared_task

from papermail import task_names
from papermail.config import get_settings
from papermail.db import session_scope
from papermail.mail.backends import TransientSendError
from papermail.signup import send_confirmation as send_confirmation_email

BEAT_SCHEDULE: dict = {}


# Transient SMTP trouble retries a few times with backoff; every countdown stays well below
# celery_app.MAX_TASK_COUNTDOWN, so Redis never redelivers a waiting retry.
@shared_task(
    name=task_names.SEND_CONFIRMATION,
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
