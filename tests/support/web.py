"""Web fixtures: the app on the test's rolled-back database, a client, and what got enqueued.

The app's sessions join the ``session`` fixture's connection (commits become savepoints), so each
test sees its own data and leaves nothing behind. Celery publishes to kombu's in-memory broker, and
``enqueued()`` reads back the tasks a request queued.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from papermail import clock, config, task_names
from papermail.celery_app import get_celery, reset_celery, worker_queues
from papermail.db.bookkeeping import SignupRequest
from papermail.db.models import Paper, ScoringRun, Subscriber, SubscriberStatus, TrendScore
from papermail.signup import flow
from papermail.signup.limits import DatabaseRateLimiter, RedisRateLimiter
from papermail.signup.requests import process_request
from papermail.subscribers import links
from papermail.web import create_app
from tests.conftest import REDIS_URL, RUN_ID

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
SIGNUP_FORM = {
    "email": "ada@example.org",
    "topics": ["cs.LG", "cs.CL"],
    "keywords": "diffusion, retrieval",
    "frequency": "weekly",
    "send_weekday": "0",
    "send_hour": "8",
    "timezone": "Europe/Berlin",
}


@pytest.fixture
def web_settings(settings: config.Settings) -> Iterator[config.Settings]:
    """The test settings with Celery on the in-memory broker (nothing leaves the process)."""
    current = replace(settings, broker_url="memory://")
    config.use_settings(current)
    reset_celery()
    yield current
    config.use_settings(settings)
    reset_celery()


@pytest.fixture
def sessions(session: Session) -> sessionmaker[Session]:
    """Sessions on the test's connection: what the app commits is rolled back after the test."""
    return sessionmaker(bind=session.bind, join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture
def make_app(web_settings, sessions) -> Callable[..., Flask]:
    """``make_app(settings=…, limiter=…, **flask_config)``: an app on the test database."""

    def make(settings: config.Settings | None = None, limiter: Any = None, **flask_config: Any) -> Flask:
        return create_app(
            settings or web_settings,
            {
                "TESTING": True,
                "SESSION_FACTORY": sessions,
                "RATE_LIMITER": limiter or DatabaseRateLimiter(),
                **flask_config,
            },
        )

    return make


@pytest.fixture
def app(make_app) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def redis_limiter() -> Iterator[RedisRateLimiter]:
    """A Redis limiter whose keys belong to this test alone."""
    limiter = RedisRateLimiter(REDIS_URL, prefix=f"papermail-test:{RUN_ID}:{uuid.uuid4().hex}:")
    yield limiter
    for key in limiter.client.scan_iter(f"{limiter.prefix}*"):
        limiter.client.delete(key)


@pytest.fixture
def enqueued(web_settings) -> Callable[[], list[tuple[str, list[Any]]]]:
    """``enqueued()`` drains the in-memory broker: the (task name, args) queued since last call."""

    def drain(everything: bool = False) -> list[tuple[str, list[Any]]]:
        """The tasks queued since the last call; ``process_signup`` (every signup's) only if asked."""
        found = []
        with get_celery().connection_for_read() as connection:
            for name in worker_queues(web_settings):
                queue = connection.SimpleQueue(name, no_ack=True)
                while True:
                    try:
                        message = queue.get_nowait()
                    except queue.Empty:
                        break
                    found.append((message.headers["task"], message.payload[0]))
                queue.close()
        return [task for task in found if everything or task[0] != task_names.PROCESS_SIGNUP]

    drain()  # start empty, whatever an earlier test left
    return drain


def csrf_token(client: FlaskClient, path: str = "/") -> str:
    """Open a page the way a browser would and take its form's CSRF token."""
    match = CSRF_FIELD.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match[1]


def post_signup(client: FlaskClient, **fields: Any):
    """Fill in and send the signup form (with a fresh CSRF token unless one is given), then
    process what it recorded as a worker would (``papermail.process_signup``)."""
    form = {**SIGNUP_FORM, **fields}
    form.setdefault("csrf_token", csrf_token(client))
    response = client.post("/subscribe", data=form)
    process_signup_requests(client.application)
    return response


def process_signup_requests(app: Flask) -> list[flow.SignupOutcome | None]:
    """Run ``papermail.process_signup`` for every recorded request, with the app's limiter."""
    context = app.extensions["papermail"]

    def work(session: Session) -> list[flow.SignupOutcome | None]:
        ids = session.scalars(sa.select(SignupRequest.id).order_by(SignupRequest.id)).all()
        return [process_request(session, context.settings, request_id, context.limiter) for request_id in ids]

    return context.transaction(work)


def response_fingerprint(response) -> tuple[int, tuple[tuple[str, str], ...], bytes]:
    """Everything a visitor could compare between two answers."""
    return response.status_code, tuple(sorted(response.headers.items())), response.data


@dataclass
class People:
    """Subscribers in each state, created directly in the database."""

    session: Session

    def add(
        self, email: str, status: SubscriberStatus = SubscriberStatus.ACTIVE, **values: Any
    ) -> Subscriber:
        now = clock.now()
        defaults = {
            "topics": ["cs.LG"],
            "created_at": now,
            "confirmed_at": now if status == SubscriberStatus.ACTIVE else None,
        }
        subscriber = Subscriber(email=email, status=status, **{**defaults, **values})
        self.session.add(subscriber)
        self.session.flush()
        return subscriber

    def get(self, email: str) -> Subscriber | None:
        self.session.expire_all()
        return self.session.scalar(sa.select(Subscriber).where(Subscriber.email == email))

    def count(self) -> int:
        return self.session.scalar(sa.select(sa.func.count()).select_from(Subscriber)) or 0


@pytest.fixture
def people(session: Session) -> People:
    return People(session)


def link_path(settings: config.Settings, purpose: links.Purpose, subscriber_id: int, *extra) -> str:
    """The path part of a signed link."""
    return links.link(settings, purpose, subscriber_id, *extra).removeprefix(settings.base_url)


def preferences_path(settings: config.Settings, subscriber: Subscriber) -> str:
    """The path of a subscriber's preferences link (bound to their address)."""
    return links.preferences_link(settings, subscriber.id, subscriber.email).removeprefix(settings.base_url)


_ARXIV_NUMBERS = itertools.count(1)


def add_papers(session, titles: list[str], *, now=None) -> list[Paper]:
    """New cs.LG papers with these titles (and four authors each), in order."""
    now = now or clock.now()
    papers = [
        Paper(
            arxiv_id=f"2601.{next(_ARXIV_NUMBERS):05d}",
            title=title,
            authors=["A. Lovelace", "C. Babbage", "G. Hopper", "A. Turing"],
            primary_category="cs.LG",
            categories=["cs.LG"],
            first_seen_at=now,
            last_seen_at=now,
        )
        for title in titles
    ]
    session.add_all(papers)
    session.flush()
    return papers


def add_run(
    session, titles: list[str], *, finished: bool = True, age: timedelta = timedelta(0)
) -> ScoringRun:
    """A finished (or not) scoring run ranking new papers with these titles, best first."""
    now = clock.now() - age
    run = ScoringRun(as_of=now, finished_at=now if finished else None, paper_count=len(titles))
    session.add(run)
    session.flush()
    for rank, paper in enumerate(add_papers(session, titles, now=now), start=1):
        evidence = f"+{50 - rank} upvotes / 24h"
        session.add(
            TrendScore(run_id=run.id, paper_id=paper.id, rank=rank, score=100 - rank, evidence=evidence)
        )
    session.flush()
    return run
