"""Housekeeping tasks."""

from celery import shared_task

from papermail import audit
from papermail.db import session_scope

BEAT_SCHEDULE: dict = {}


@shared_task(name="papermail.record_heartbeat")
def record_heartbeat(token: str) -> None:
    """Write an audit row proving a worker ran a task end to end (used by doctor and tests)."""
    with session_scope() as session:
        audit.record(session, "worker", "worker.heartbeat", token=token)
