"""Enqueue tasks only after the database transaction that made their work visible commits."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail.celery_app import get_celery

_PENDING_KEY = "papermail.pending_tasks"


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
        app.send_task(task_name, args=list(args))


def _drop_pending(session: Session, _previous_transaction: Any) -> None:
    session.info.pop(_PENDING_KEY, None)
