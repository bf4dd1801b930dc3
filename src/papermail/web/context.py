"""What every request handler needs: settings, a session factory and the rate limiter."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session, sessionmaker

from papermail.config import Settings
from papermail.db.session import with_lock_retries
from papermail.signup.limits import RateLimiter
from papermail.web.logs import describe_error
from papermail.web.probes import ReadinessCache

log = logging.getLogger(__name__)
T = TypeVar("T")
# The home page's preview changes when a scoring run finishes (hourly at most): a minute-old copy
# per process saves a query on every page view.
PREVIEW_TTL_SECONDS = 60.0
# A transaction that lost a race (SQLite's writer lock, a PostgreSQL deadlock) is simply re-run.
TRANSACTION_ATTEMPTS = 3


@dataclass
class WebContext:
    settings: Settings
    sessions: sessionmaker[Session]
    limiter: RateLimiter
    preview_ttl: float = PREVIEW_TTL_SECONDS
    readiness: ReadinessCache = field(default_factory=ReadinessCache)
    _cached: dict[str, tuple[float, object]] = field(default_factory=dict)

    def cached(self, name: str, compute: Callable[[], T]) -> T:
        """``compute()``, reused for ``preview_ttl`` seconds in this process.

        An empty answer is not kept: on a fresh install the first ranking shows as soon as it exists.
        """
        now = time.monotonic()
        hit = self._cached.get(name)
        if hit is not None and hit[0] > now:
            return hit[1]  # type: ignore[return-value]
        value = compute()
        if value:
            self._cached[name] = (now + self.preview_ttl, value)
        return value

    def transaction(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a committed transaction, re-running it at once if it lost a race.

        Tasks queued by ``work`` go out after the commit (see papermail.celery_app).
        """

        def locked(session: Session) -> T:
            _take_sqlite_write_lock(session)
            return work(session)

        return with_lock_retries(self.sessions, locked, TRANSACTION_ATTEMPTS, pause=0, on_retry=_log_retry)

    def read(self, work: Callable[[Session], T]) -> T:
        """Run read-only ``work`` in a session that is rolled back afterwards."""
        with self.sessions() as session:
            return work(session)


def _log_retry(attempt: int, exc: sa.exc.OperationalError) -> None:
    log.info("transaction conflict (attempt %d), retrying: %s", attempt, describe_error(exc))


def _take_sqlite_write_lock(session: Session) -> None:
    # A SQLite transaction that reads and then writes fails at once with "database is locked" if
    # another process committed in between (its snapshot is stale; the busy timeout doesn't help).
    # One that starts with a write waits for its turn instead. A no-op UPDATE takes the lock.
    if session.get_bind().dialect.name == "sqlite":
        session.execute(sa.text("UPDATE rate_limit_hits SET id = id WHERE 0"))


def web_context() -> WebContext:
    """The current app's context."""
    return current_app.extensions["papermail"]
