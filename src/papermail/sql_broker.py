"""kombu's SQLAlchemy broker transport, made to let a worker stop without waiting out its polls.

Celery's worker loop for a polling broker calls ``drain_events(timeout=2.0)`` and checks for a stop
request only between calls, then drains once more before it stops; kombu sleeps a whole polling
interval between empty polls. An idle worker told to stop therefore waited up to two polls (about
four seconds) before it even began to shut down, and could take a new message in the meantime.
This transport polls as often, but naps in short steps and gives up as soon as a stop is asked for,
so a stopping worker takes no new message and its running tasks finish as before.
"""

from __future__ import annotations

import time
from queue import Empty

from kombu.transport import sqlalchemy

SCHEME_PREFIX = "sqla+"
TRANSPORT = f"{__name__}:Transport"
# How soon a napping worker notices it was asked to stop.
STOP_CHECK_SECONDS = 0.05


def worker_stopping() -> bool:
    """True once this process's Celery worker was asked for a warm or cold shutdown."""
    # Imported here: only a worker drains, and the other processes need not load the worker's modules.
    from celery.worker import state

    # The flags hold the exit code, which is 0 for a warm shutdown: only None and False mean "no".
    return any(flag is not None and flag is not False for flag in (state.should_stop, state.should_terminate))


class Transport(sqlalchemy.Transport):
    """The SQLAlchemy transport, with a wait for messages that a stop request cuts short."""

    def drain_events(self, connection, timeout=None):
        """Deliver one message, polling every ``polling_interval``; TimeoutError if none came in time."""
        deadline = time.monotonic() + timeout if timeout is not None else float("inf")
        while not worker_stopping():
            try:
                self.cycle.get(self._deliver, timeout=timeout)
            except Empty:
                if time.monotonic() >= deadline:
                    break
                _nap_until(min(time.monotonic() + self.polling_interval, deadline))
            else:
                return
        raise TimeoutError  # socket.timeout, which the worker loop takes for "nothing came"


def _nap_until(moment: float) -> None:
    while not worker_stopping() and (left := moment - time.monotonic()) > 0:
        time.sleep(min(left, STOP_CHECK_SECONDS))


def celery_broker(broker_url: str) -> dict[str, str | None]:
    """Celery's ``broker_url`` and ``broker_transport`` for papermail's broker URL.

    kombu takes the transport from a ``sqla+`` prefix before it looks at ``broker_transport``, so
    the URL loses its prefix here and names the database alone.
    """
    if not broker_url.startswith(SCHEME_PREFIX):
        return {"broker_url": broker_url, "broker_transport": None}
    return {"broker_url": broker_url.removeprefix(SCHEME_PREFIX), "broker_transport": TRANSPORT}
