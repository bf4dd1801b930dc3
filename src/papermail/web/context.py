"""What every request handler needs: settings, a session factory and the rate limiter."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session, sessionmaker

from papermail.config import Settings
from papermail.ratelimit import RateLimiter

log = logging.getLogger(__name__)
T = TypeVar("T")
# A transaction that lost a race (SQLite's writer lock, a PostgreSQL deadlock) is simply re-run.
TRANSACTION_ATTEMPTS = 3
_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock


@dataclass(frozen=True)
class WebContext:
    settings: Settings
    sessions: sessionmaker[Session]
    limiter: RateLimiter

    def transaction(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a committed transaction, re-running it if it lost a race."""
        for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
            try:
                with self.sessions.begin() as session:
                    return work(session)
            except sa.exc.OperationalError as exc:
                if attempt == TRANSACTION_ATTEMPTS or not _is_retryable(exc):
                    raise
                log.info("transaction conflict (attempt %d), retrying: %s", attempt, exc.orig)
        raise AssertionError("unreachable")

    def read(self, work: Callable[[Session], T]) -> T:
        """Run read-only ``work`` in a session that is rolled back afterwards."""
        with self.sessions() as session:
            return work(session)


def _is_retryable(exc: sa.exc.OperationalError) -> bool:
    message = str(exc.orig).lower()
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return sqlstate in _RETRYABLE_SQLSTATES or "database is locked" in message or "busy" in message


def web_context() -> WebContext:
    """The current app's context."""
    return current_app.extensions["papermail"]
