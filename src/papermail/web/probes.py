"""The probes behind /healthz and /readyz: does the database answer, does the broker, each apart.

/healthz asks the database only (cheap, for restarts); /readyz asks both (whether to send traffic).
Load balancers ask every few seconds, from every instance, and anyone on the internet may ask too:
the answer is kept for ``READINESS_TTL_SECONDS`` per process, one probe runs at a time, and a probe
that takes longer than ``PROBE_TIMEOUT_SECONDS`` counts as "unreachable" (it finishes in the
background; callers meanwhile get the last answer).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import sqlalchemy as sa
from kombu import Connection
from sqlalchemy.orm import Session, sessionmaker

from papermail.celery_app import broker_connection
from papermail.config import Settings
from papermail.redaction import mask_secrets

log = logging.getLogger(__name__)
# A probe runs every few seconds; a service that takes longer than this to answer is not ready.
PROBE_TIMEOUT_SECONDS = 2.0
READINESS_TTL_SECONDS = 5.0
OK, UNREACHABLE = "ok", "unreachable"
States = dict[str, str]
NOT_READY: States = {"database": UNREACHABLE, "broker": UNREACHABLE}


def database_state(sessions: sessionmaker[Session]) -> str:
    """``ok`` if the database answers a query (and a connection to ask it on can be had)."""
    try:
        with sessions() as session:
            session.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        log.warning("database unreachable: %s", type(exc).__name__)
        return UNREACHABLE
    return OK


def readiness_states(sessions: sessionmaker[Session], settings: Settings) -> States:
    """The database's and the broker's states, each probed apart."""
    return {"database": database_state(sessions), "broker": broker_state(settings)}


def broker_state(settings: Settings) -> str:
    """``ok`` if the broker takes a connection and holds the work queue (declared as a worker would)."""
    url = settings.broker_url
    try:
        with Connection(**broker_connection(url)) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=PROBE_TIMEOUT_SECONDS)
            channel = connection.default_channel
            try:
                channel.queue_declare(settings.celery_queue, durable=True, auto_delete=False)
            finally:
                _release_session(channel)
    except Exception as exc:  # any transport's failure means the same thing: not ready
        log.warning("readyz: broker unreachable: %s: %s", type(exc).__name__, mask_secrets(str(exc), url))
        return UNREACHABLE
    return OK


def _release_session(channel: Any) -> None:
    # kombu's SQLAlchemy channel keeps its ORM session (and so a pooled connection) until garbage
    # collection, not until the channel closes: without this, a few dozen probes empty the pool.
    session = getattr(channel, "_session", None)
    if session is not None:
        session.close()


class ReadinessCache:
    """The last readiness answer of this process, refreshed by at most one probe at a time."""

    def __init__(self, ttl: float = READINESS_TTL_SECONDS, timeout: float = PROBE_TIMEOUT_SECONDS) -> None:
        self.ttl = ttl
        self.timeout = timeout
        self._answer: States | None = None
        self._expires = 0.0
        self._lock = threading.Lock()
        self._running: Future[States] | None = None

    def states(self, probe: Callable[[], States]) -> States:
        """The cached answer while fresh; otherwise ``probe()``'s, waiting at most ``timeout``."""
        with self._lock:
            if self._answer is not None and time.monotonic() < self._expires:
                return self._answer
            if self._running is None:
                self._running = _start(probe)
            running = self._running
        try:
            answer = running.result(timeout=self.timeout)
        except FutureTimeout:
            # Still running: not ready now; the first caller after it ends takes its answer.
            log.warning("readyz: probe took longer than %.1f s", self.timeout)
            return dict(NOT_READY)
        except Exception as exc:
            log.warning("readyz: probe failed: %s", type(exc).__name__)
            answer = dict(NOT_READY)
        with self._lock:
            if self._running is running:
                self._running = None
                self._answer, self._expires = answer, time.monotonic() + self.ttl
        return answer


def _start(probe: Callable[[], States]) -> Future[States]:
    # A daemon thread: a probe stuck on a dead host must not keep the process from exiting.
    future: Future[States] = Future()

    def run() -> None:
        try:
            future.set_result(probe())
        except BaseException as exc:  # handed to the caller, who answers "not ready"
            future.set_exception(exc)

    threading.Thread(target=run, name="readyz", daemon=True).start()
    return future
