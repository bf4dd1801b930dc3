"""Redis or the broker down: signup and confirm answer 503, links keep working, /readyz says why."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa
from freezegun import freeze_time
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from papermail import clock, config
from papermail.celery_app import reset_celery
from papermail.db.bookkeeping import AuditLog, SignupRequest
from papermail.db.models import SubscriberStatus
from papermail.signup import confirmations
from papermail.signup.limits import RedisRateLimiter
from papermail.signup.requests import SWEEP_AFTER, waiting_request_ids
from papermail.subscribers import links
from tests.conftest import free_port, wait_for
from tests.support.web import (
    SIGNUP_FORM,
    csrf_token,
    link_path,
    post_signup,
    preferences_path,
    process_signup_requests,
)


class RedisServer:
    """A real ``redis-server`` of the test's own, on its own port, that the test can stop."""

    def __init__(self, workdir) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
        )
        wait_for(self._answers, timeout=20, message=f"redis-server on port {self.port}")

    def _answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)


@pytest.fixture
def own_redis(tmp_path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def redis_app(make_app, web_settings, own_redis):
    """The web app with its limits in the test's own Redis (which the test may stop)."""
    return make_app(limiter=RedisRateLimiter(own_redis.url))


def _signup_count(session) -> int:
    query = sa.select(sa.func.count()).select_from(AuditLog).where(AuditLog.action == "subscriber.signup")
    return session.scalar(query) or 0


def test_with_redis_down_signup_and_confirm_are_503_and_links_keep_working(
    redis_app, web_settings, own_redis, people, session, enqueued
):
    client = redis_app.test_client()
    assert post_signup(client, email="before@example.org").status_code == 200
    pending = people.add("pending@example.org", SubscriberStatus.PENDING, confirmation_sent_at=clock.now())
    active = people.add("active@example.org")
    enqueued()
    token = csrf_token(client)
    signups_before = _signup_count(session)

    own_redis.stop()

    refused = post_signup(client, email="during@example.org", csrf_token=token)
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "60"
    assert "try again in a minute" in refused.get_data(as_text=True)
    assert people.get("during@example.org") is None
    assert _signup_count(session) == signups_before
    assert enqueued() == []

    confirm_path = confirmations.confirm_link(web_settings, pending).removeprefix(web_settings.base_url)
    confirming = client.post(confirm_path, data={"csrf_token": csrf_token(client, confirm_path)})
    assert confirming.status_code == 503 and confirming.headers["Retry-After"] == "60"
    assert people.get("pending@example.org").status == SubscriberStatus.PENDING

    # Preferences and unsubscribing need only the database.
    preferences = preferences_path(web_settings, active)
    assert client.get(preferences).status_code == 200
    form = {
        "csrf_token": csrf_token(client, preferences),
        "topics": ["cs.RO"],
        "frequency": "weekly",
        "send_weekday": "0",
        "send_hour": "8",
        "timezone": "UTC",
    }
    assert client.post(preferences, data=form).status_code == 200
    assert people.get("active@example.org").topics == ["cs.RO"]
    unsubscribe = link_path(web_settings, links.Purpose.UNSUBSCRIBE, active.id)
    assert client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert people.get("active@example.org").status == SubscriberStatus.UNSUBSCRIBED


def test_readyz_reports_database_and_broker_apart_and_healthz_stays_cheap(
    make_app, web_settings, own_redis, sessions
):
    app = make_app(settings=replace(web_settings, broker_url=own_redis.url), READINESS_TTL=0)
    client = app.test_client()
    ready = client.get("/readyz")
    assert (ready.status_code, ready.json) == (200, {"status": "ok", "database": "ok", "broker": "ok"})

    own_redis.stop()
    broker_down = client.get("/readyz")
    assert broker_down.status_code == 503
    assert broker_down.json == {"status": "error", "database": "ok", "broker": "unreachable"}
    assert client.get("/healthz").status_code == 200

    closed = free_port()
    nowhere = sessionmaker(bind=create_engine(f"postgresql+psycopg://nobody@127.0.0.1:{closed}/none"))
    both_down = make_app(settings=replace(web_settings, broker_url=own_redis.url))
    both_down.extensions["papermail"].sessions = nowhere
    answer = both_down.test_client().get("/readyz")
    assert answer.status_code == 503
    assert answer.json == {"status": "error", "database": "unreachable", "broker": "unreachable"}
    nowhere.kw["bind"].dispose()


@pytest.fixture
def broken_broker(web_settings):
    """``broken_broker(url)``: Celery publishes to ``url`` (a broker that can't take a message)."""

    def use(url: str) -> None:
        config.use_settings(replace(web_settings, broker_url=url))
        reset_celery()

    yield use
    config.use_settings(web_settings)
    reset_celery()


def _stored_despite_the_broker(client, people, session, caplog) -> None:
    with freeze_time(clock.now()) as frozen:
        form = {**SIGNUP_FORM, "email": "stored@example.org", "csrf_token": csrf_token(client)}
        with caplog.at_level(logging.ERROR, logger="papermail.celery_app"):
            response = client.post("/subscribe", data=form)
        assert response.status_code == 200
        assert "Check your inbox" in response.get_data(as_text=True)
        assert any("could not queue papermail.process_signup" in r.getMessage() for r in caplog.records)
        (request_id,) = session.scalars(sa.select(SignupRequest.id)).all()
        # The sweeper finds it once its message is overdue, and the signup goes ahead.
        assert waiting_request_ids(session) == []
        frozen.tick(SWEEP_AFTER + timedelta(seconds=1))
        assert waiting_request_ids(session) == [request_id]
        process_signup_requests(client.application)
    subscriber = people.get("stored@example.org")
    assert subscriber.status == SubscriberStatus.PENDING
    assert subscriber.confirmation_sent_at is not None


def test_a_signup_whose_limits_were_checked_is_stored_when_redis_fails_after(
    redis_app, own_redis, tmp_path, people, session, broken_broker, caplog
):
    # The limits live in a Redis that answers; the broker's Redis has just gone away.
    stopped = RedisServer(tmp_path)
    stopped.stop()
    broken_broker(stopped.url)
    _stored_despite_the_broker(redis_app.test_client(), people, session, caplog)


def test_a_signup_is_stored_when_the_embedded_broker_file_is_unwritable(
    client, tmp_path, people, session, broken_broker, caplog
):
    # A directory where the broker's SQLite file should be: nothing can be written there, even by root.
    broker_file = tmp_path / "broker.db"
    broker_file.mkdir()
    broken_broker(f"sqla+sqlite:///{broker_file}")
    _stored_despite_the_broker(client, people, session, caplog)
