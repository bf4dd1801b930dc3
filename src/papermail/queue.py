"""Enqueue tasks only after the database transaction that made their work visible commits."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail.celery_app import get_celery

_PENDING_KEY = "papermail.pending_tasks"
PUBLISH_ATTEMPTS = 2

log = logging.getLogger(__name__)


def enqueue_after_commit(session: Session, task_name: str, *args: Any) -> None:
    """Send ``task_name(*args)`` when ``session`` commits; forget it if the session rolls back.

    A task enqueued before commit can run before its rows exist (or after they were rolled back);
    a task enqueued after a rollback would act on nothing. Arguments must be JSON (IDs, keys).
    """
    if not sa.event.contains(session, "after_commit", _send_pending):
        sa.event.listen(session, "after_commit", _send_pending)
        sa.event.listen(session, "after_soft_rollback", _drop_pending)
    session.info.setdefault(_PENDING_KEY, []).append((task_name, args))


def _send_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING_KEY, [])
    if not pending:
        return
    app = get_celery()
    for task_name, args in pending:
        _publish(app, task_name, list(args))


def _publish(app, task_name: str, args: list[Any]) -> None:
    # The transaction has already committed, so raising here would report a failure for work that
    # is safely stored. Retry once (the embedded broker can lose a race creating its queue row),
    # then log: the rows stay pending and the sweepers re-queue them.
    for attempt in range(1, PUBLISH_ATTEMPTS + 1):
        try:
            app.send_task(task_name, args=args)
            return
        except Exception as exc:
            if attempt == PUBLISH_ATTEMPTS:
                log.error("could not queue %s%r after commit: %s", task_name, tuple(args), exc)


def _drop_pending(session: Session, _previous_transaction: Any) -> None:
    session.info.pop(_PENDING_KEY, None)
