"""Housekeeping tasks."""

from celery import shared_task
from celery.schedules import crontab

from papermail import clock, task_names
from papermail.config import get_settings
from papermail.db import audit, session_scope
from papermail.signup import flow, limits

PURGE_EXPIRED_SIGNUPS_AT = crontab(minute=17)  # hourly; unconfirmed signups live for days

BEAT_SCHEDULE: dict = {
    "purge-expired-signups": {
        "task": task_names.PURGE_EXPIRED_SIGNUPS,
        "schedule": PURGE_EXPIRED_SIGNUPS_AT,
    },
}


@shared_task(name=task_names.RECORD_HEARTBEAT)
def record_heartbeat(token: str) -> None:
    """Write an audit row proving a worker ran a task end to end (used by doctor and tests)."""
    with session_scope() as session:
        audit.record(session, "worker", "worker.heartbeat", token=token)


@shared_task(name=task_names.PURGE_EXPIRED_SIGNUPS)
def purge_expired_signups() -> int:
    """Delete signups never confirmed in time, and rate-limit hits too old to count."""
    settings = get_settings()
    with session_scope(settings) as session:
        purged = flow.purge_unconfirmed(session, settings)
        limits.purge_hits(session, clock.now() - limits.longest_window(settings).window)
    return purged
