"""The Celery application, built from Settings, and tasks enqueued after their transaction commits.

Task modules use ``@shared_task`` and never import the app.

Reliability settings, and why:

* ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only after its task
  finishes, so a worker killed mid-task leaves it on the broker for another worker. Every task is
  therefore written to be safe to run twice (sends claim their rows first).
* ``worker_prefetch_multiplier = 1``: a worker holds one unacknowledged message at a time, so a crash
  strands at most one batch and the others stay available to the remaining workers.
* ``visibility_timeout`` (Redis): a message not acknowledged within it is handed out again. It must be
  longer than the longest task (``task_time_limit``) plus the longest countdown we ever schedule, or a
  healthy long task would be delivered twice. Delivery retries are scheduled in the database
  (``next_attempt_at``) and picked up by the sweeper, so Celery countdowns stay short.
* UTC everywhere: beat crontabs and stored times never depend on the host's timezone.
* Signups have a queue of their own (``<queue>-signups``), consumed by every worker beside the main
  one: workers take from both in turn, so a flood of signups never queues ahead of a confirmation
  or a digest.
"""

from __future__ import annotations

import importlib
import logging
import time
from datetime import timedelta
from pathlib import Path
from queue import Empty
from typing import Any

import sqlalchemy as sa
from celery import Celery
from kombu.transport import sqlalchemy as kombu_database
from sqlalchemy.orm import Session

from papermail import task_names
from papermail.config import Settings, get_settings

log = logging.getLogger(__name__)

TASK_MODULES = (
    "papermail.tasks.maintenance",
    "papermail.tasks.fetch",
    "papermail.tasks.trending",
    "papermail.tasks.digest",
    "papermail.tasks.web",
    "papermail.tasks.catchup",
    "papermail.tasks.bounces",
    "papermail.tasks.bounce_intake",
)

TASK_TIME_LIMIT = timedelta(minutes=10)
MAX_TASK_COUNTDOWN = timedelta(minutes=10)
# Comfortably above TASK_TIME_LIMIT + MAX_TASK_COUNTDOWN; checked by a test.
VISIBILITY_TIMEOUT = timedelta(hours=1)


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery settings papermail runs with."""
    broker = broker_connection(settings.broker_url)
    return {
        "broker_url": broker["hostname"],
        "broker_transport": broker["transport"],
        "broker_transport_options": broker["transport_options"],
        "broker_connection_retry_on_startup": True,
        "task_default_queue": settings.celery_queue,
        "task_routes": {task_names.PROCESS_SIGNUP: {"queue": signup_queue(settings)}},
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": TASK_TIME_LIMIT.total_seconds(),
        "task_soft_time_limit": TASK_TIME_LIMIT.total_seconds() - 30,
        # Results live in the database (delivery rows, fetch runs), never in a result backend.
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "timezone": "UTC",
        "enable_utc": True,
        "worker_hijack_root_logger": False,
        "beat_schedule": beat_schedule(),
        "include": list(TASK_MODULES),
    }


def signup_queue(settings: Settings) -> str:
    """The queue signup processing goes to, apart from confirmations and digests."""
    return f"{settings.celery_queue}-signups"


def worker_queues(settings: Settings) -> list[str]:
    """Every queue a worker consumes."""
    return [settings.celery_queue, signup_queue(settings)]


class DatabaseBroker(kombu_database.Transport):
    """kombu's database broker (``sqla+…`` URLs), polling ten times a second; a stop cuts a wait short."""

    # While every pool slot is busy, kombu waits a whole polling interval before it takes the next
    # message, backlog or not: at kombu's default of 1 s a worker took about one task a second, so
    # a signup behind a flood of 40 waited ~45 s for its confirmation. An idle poll is one indexed
    # read, so ten a second cost little. (kombu hands every transport option to create_engine, so
    # the interval can't be passed as one.)
    polling_interval = 0.1

    def drain_events(self, connection, timeout=None):
        """Deliver one message, polling every ``polling_interval``; TimeoutError if none came in time.

        Celery's worker loop calls this with a 2 s timeout and looks for a stop request only between
        calls, then drains once more: kombu's own version made an idle worker told to stop wait up
        to two rounds before it began to, and it could take a new message meanwhile.
        """
        deadline = time.monotonic() + timeout if timeout is not None else float("inf")
        while not _worker_stopping():
            try:
                self.cycle.get(self._deliver, timeout=timeout)
            except Empty:
                if time.monotonic() >= deadline:
                    break
                _nap_until(min(time.monotonic() + self.polling_interval, deadline))
            else:
                return
        raise TimeoutError  # socket.timeout, which the worker loop takes for "nothing came"


STOP_CHECK_SECONDS = 0.05  # how soon a napping worker notices it was asked to stop


def _worker_stopping() -> bool:
    # Imported here: only a worker drains, and the other processes need not load the worker's modules.
    from celery.worker import state

    # The flags hold the exit code, which is 0 for a warm shutdown: only None and False mean "no".
    return any(flag is not None and flag is not False for flag in (state.should_stop, state.should_terminate))


def _nap_until(moment: float) -> None:
    while not _worker_stopping() and (left := moment - time.monotonic()) > 0:
        time.sleep(min(left, STOP_CHECK_SECONDS))


def broker_connection(broker_url: str) -> dict[str, Any]:
    """How kombu reaches the broker: ``hostname`` (its URL), ``transport`` and ``transport_options``."""
    if broker_url.startswith("sqla+"):
        # A URL's "sqla+" prefix would choose kombu's own transport over ours, so it goes.
        return {
            "hostname": broker_url.removeprefix("sqla+"),
            "transport": f"{DatabaseBroker.__module__}:{DatabaseBroker.__qualname__}",
            # Passed to create_engine: wait for the web/worker/beat processes' writes, don't fail.
            "transport_options": {"connect_args": {"timeout": 30}} if "+sqlite" in broker_url else {},
        }
    redelivery = {"visibility_timeout": VISIBILITY_TIMEOUT.total_seconds()}
    return {
        "hostname": broker_url,
        "transport": None,
        "transport_options": redelivery if broker_url.startswith("redis") else {},
    }


def beat_schedule() -> dict[str, dict[str, Any]]:
    """Every feature's periodic tasks, each declared next to its tasks as ``BEAT_SCHEDULE``."""
    schedule: dict[str, dict[str, Any]] = {}
    for name in TASK_MODULES:
        schedule.update(getattr(importlib.import_module(name), "BEAT_SCHEDULE", {}))
    return schedule


def create_celery(settings: Settings) -> Celery:
    """A Celery app configured from ``settings`` and made current, so shared tasks bind to it."""
    app = Celery("papermail", set_as_current=True)
    app.conf.update(celery_config(settings))
    return app


_app: Celery | None = None


def get_celery() -> Celery:
    """The process-wide Celery app, built from the current settings on first use."""
    global _app
    if _app is None:
        _app = create_celery(get_settings())
    return _app


def declare_embedded_queue(settings: Settings) -> None:
    """Create the embedded broker's queue before the processes that use it start together.

    kombu's SQLAlchemy transport creates a queue by select-then-insert, so a worker declaring it
    while beat queues its first task can both insert; the loser's worker then dies on start with
    an IntegrityError. Declared once up front, the row exists and nobody races. Redis needs nothing.
    """
    if not settings.broker_url.startswith("sqla+"):
        return
    broker_file = sa.engine.make_url(settings.broker_url.removeprefix("sqla+")).database
    if broker_file:
        Path(broker_file).parent.mkdir(parents=True, exist_ok=True)
    app = get_celery()
    for attempt in range(2):
        try:
            with app.connection_for_write() as connection:
                for name in worker_queues(settings):
                    app.amqp.queues[name](connection.default_channel).declare()
            return
        except sa.exc.IntegrityError:  # another process created it just now: declaring again finds it
            if attempt:
                raise


def reset_celery() -> None:
    """Forget the process-wide app (after the settings changed)."""
    global _app
    _app = None


# -- enqueueing after commit --------------------------------------------------------------------

_PENDING_KEY = "papermail.pending_tasks"
PUBLISH_ATTEMPTS = 2


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
