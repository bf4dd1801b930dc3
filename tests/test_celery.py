"""The Celery app: reliability settings, and a real worker process running a task end to end."""

import uuid
from dataclasses import replace

import pytest
import sqlalchemy as sa

from papermail import celery_app
from papermail.celery_app import enqueue_after_commit
from papermail.config import load_settings
from papermail.db import get_engine, session_scope
from papermail.db.bookkeeping import AuditLog
from tests.conftest import REDIS_URL, settings_environ, wait_for


def test_reliability_settings(settings):
    conf = celery_app.celery_config(replace(settings, broker_url="redis://127.0.0.1:6379/0"))
    assert conf["task_acks_late"] is True
    assert conf["task_reject_on_worker_lost"] is True
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["timezone"] == "UTC" and conf["enable_utc"] is True
    # A message must not be handed to a second worker while the first may still be running it.
    longest = celery_app.TASK_TIME_LIMIT + celery_app.MAX_TASK_COUNTDOWN
    assert conf["broker_transport_options"]["visibility_timeout"] > longest.total_seconds()


def _heartbeats(database_url: str, token: str) -> int:
    with get_engine(database_url).connect() as conn:
        query = (
            sa.select(sa.func.count())
            .select_from(AuditLog)
            .where(
                AuditLog.action == "worker.heartbeat",
                AuditLog.details["token"].as_string() == token,
            )
        )
        return conn.scalar(query)


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "broker"), [("postgresql", "redis"), ("sqlite", "embedded")])
def test_real_worker_runs_a_task_end_to_end(databases, tmp_path, worker_factory, backend, broker):
    database_url = databases(backend).fresh()
    overrides = {"database_url": database_url}
    if broker == "redis":
        overrides["broker_url"] = REDIS_URL
    environ = settings_environ(tmp_path, **overrides)
    settings = load_settings(environ)
    celery_app.reset_celery()
    from papermail import config

    config.use_settings(settings)
    try:
        worker = worker_factory(environ)
        token = uuid.uuid4().hex
        with session_scope(settings) as session:
            enqueue_after_commit(session, "papermail.record_heartbeat", token)
            # Rolled back: this one must never reach the broker.
            assert _heartbeats(database_url, token) == 0
        rolled_back = uuid.uuid4().hex
        with pytest.raises(RuntimeError), session_scope(settings) as session:
            enqueue_after_commit(session, "papermail.record_heartbeat", rolled_back)
            raise RuntimeError("roll back")
        wait_for(
            lambda: _heartbeats(database_url, token) == 1,
            timeout=60,
            message=f"the worker to run the task; log:\n{worker.log()}",
        )
        assert _heartbeats(database_url, rolled_back) == 0
    finally:
        config.use_settings(None)
        celery_app.reset_celery()


def test_the_embedded_queue_exists_before_worker_and_beat_race_to_create_it(settings):
    assert settings.broker_url.startswith("sqla+sqlite:")
    celery_app.declare_embedded_queue(settings)
    celery_app.declare_embedded_queue(settings)  # safe to repeat: every process of `up` does it
    engine = sa.create_engine(settings.broker_url.removeprefix("sqla+"))
    try:
        with engine.connect() as connection:
            names = connection.scalars(sa.text("SELECT name FROM kombu_queue")).all()
    finally:
        engine.dispose()
    assert sorted(names) == celery_app.worker_queues(settings)
