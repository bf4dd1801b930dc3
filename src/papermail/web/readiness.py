"""Readiness: can this web process do its job right now? The database and the broker, each apart."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from kombu import Connection
from sqlalchemy.orm import Session

from papermail.celery_app import broker_transport_options
from papermail.config import Settings, mask_secrets

log = logging.getLogger(__name__)
# A probe runs every few seconds; a service that takes longer than this to answer is not ready.
PROBE_TIMEOUT_SECONDS = 2.0
OK, UNREACHABLE = "ok", "unreachable"


def database_state(session: Session) -> str:
    """``ok`` if the database answers a query."""
    try:
        session.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        log.warning("readyz: database unreachable: %s", type(exc).__name__)
        return UNREACHABLE
    return OK


def broker_state(settings: Settings) -> str:
    """``ok`` if the broker takes a connection and holds the work queue (declared as a worker would)."""
    url = settings.broker_url
    try:
        with Connection(url, transport_options=broker_transport_options(url)) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=PROBE_TIMEOUT_SECONDS)
            connection.default_channel.queue_declare(settings.celery_queue, durable=True, auto_delete=False)
    except Exception as exc:  # any transport's failure means the same thing: not ready
        log.warning("readyz: broker unreachable: %s: %s", type(exc).__name__, mask_secrets(str(exc), url))
        return UNREACHABLE
    return OK
