"""Fixtures for the admin command line: a fresh committed database per test, a runner, and seed data.

Commands open their own sessions and commit, so these tests use a committed database (emptied
before each test, as the delivery tests do) rather than the shared rolled-back one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from click.testing import CliRunner, Result

from papermail import clock, config
from papermail.celery_app import reset_celery
from papermail.cli import cli
from papermail.db import session_scope
from papermail.db.bookkeeping import AuditLog, FetchProblem, FetchRun
from papermail.db.models import (
    Delivery,
    DeliveryStatus,
    Digest,
    FetchStatus,
    Paper,
    ScoringRun,
    Subscriber,
    SubscriberStatus,
    TrendScore,
)
from papermail.subscribers.core import suppress
from tests.conftest import Database, free_port, make_settings

SMTP_USER, SMTP_PASSWORD = "papermail", "s3cret"


@pytest.fixture
def cli_settings(database: Database, committed_databases, tmp_path: Path) -> Iterator[config.Settings]:
    """Settings on an emptied database of the test's backend, installed process-wide."""
    current = make_settings(tmp_path, database_url=committed_databases(database.backend))
    config.use_settings(current)
    reset_celery()
    yield current
    config.use_settings(None)
    reset_celery()


@pytest.fixture
def run(cli_settings) -> Callable[..., Result]:
    """``run("subscribers", "list")``: invoke the command line as a person would, in-process."""

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


def one_line_error(result: Result) -> str:
    """The single stderr line of a failed command, without the ``Error:`` prefix."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0].removeprefix("Error: ")


@dataclass
class Seed:
    """Committed test data, each method one transaction."""

    settings: config.Settings

    def subscriber(
        self,
        email: str,
        *,
        status: SubscriberStatus = SubscriberStatus.ACTIVE,
        topics: Sequence[str] = ("cs.LG",),
        keywords: Sequence[str] = (),
    ) -> int:
        now = clock.now()
        with session_scope(self.settings) as session:
            subscriber = Subscriber(
                email=email,
                status=status,
                topics=list(topics),
                keywords=list(keywords),
                created_at=now - timedelta(days=30),
                confirmed_at=now - timedelta(days=30) if status != SubscriberStatus.PENDING else None,
            )
            session.add(subscriber)
            session.flush()
            return subscriber.id

    def find(self, email: str) -> Subscriber | None:
        """The subscriber with this address, as stored now."""
        return self.scalar(sa.select(Subscriber).where(Subscriber.email == email))

    def drop_categories(self, arxiv_ids: Sequence[str]) -> None:
        """Make papers look first seen on Hugging Face: no arXiv category until the API is asked."""
        with session_scope(self.settings) as session:
            query = sa.update(Paper).where(Paper.arxiv_id.in_(arxiv_ids))
            session.execute(query.values(primary_category=None, categories=[]))

    def suppress(self, email: str, reason: str) -> None:
        with session_scope(self.settings) as session:
            suppress(session, email, reason)

    def scoring_run(
        self,
        papers: Sequence[tuple[str, str, str]],
        *,
        finished: bool = True,
        as_of: datetime | None = None,
        categories: Sequence[str] = ("cs.LG",),
    ) -> int:
        """A ranking of ``(arxiv_id, title, evidence)`` in order; papers are created when new."""
        now = clock.now()
        with session_scope(self.settings) as session:
            run = ScoringRun(as_of=as_of or now, finished_at=now if finished else None)
            session.add(run)
            session.flush()
            for rank, (arxiv_id, title, evidence) in enumerate(papers, start=1):
                paper = session.scalar(sa.select(Paper).where(Paper.arxiv_id == arxiv_id))
                if paper is None:
                    paper = Paper(
                        arxiv_id=arxiv_id,
                        title=title,
                        abstract=f"We study {title.lower()}.",
                        authors=["A. Author", "B. Author"],
                        primary_category=categories[0],
                        categories=list(categories),
                        published_at=now - timedelta(days=2),
                        first_seen_at=now - timedelta(days=2),
                        last_seen_at=now,
                    )
                    session.add(paper)
                    session.flush()
                session.add(
                    TrendScore(
                        run_id=run.id, paper_id=paper.id, rank=rank, score=100.0 / rank, evidence=evidence
                    )
                )
            run.paper_count = len(papers)
            return run.id

    def deliveries(
        self,
        period_key: str,
        statuses: dict[str, DeliveryStatus],
        *,
        smtp_code: int | None = None,
        reply: str | None = None,
    ) -> dict[str, int]:
        """Delivery rows for existing subscribers (by email) in ``period_key``; returns their ids."""
        now = clock.now()
        ids = {}
        with session_scope(self.settings) as session:
            digest = session.scalar(sa.select(Digest).where(Digest.period_key == period_key))
            if digest is None:
                digest = Digest(period_key=period_key, created_at=now)
                session.add(digest)
                session.flush()
            for email, status in statuses.items():
                subscriber_id = session.scalar(sa.select(Subscriber.id).where(Subscriber.email == email))
                failed = status in (DeliveryStatus.FAILED, DeliveryStatus.EXHAUSTED, DeliveryStatus.RETRY)
                delivery = Delivery(
                    digest_id=digest.id,
                    subscriber_id=subscriber_id,
                    period_key=period_key,
                    status=status,
                    scheduled_for=now,
                    planned_at=now,
                    updated_at=now,
                    attempts=1 if status != DeliveryStatus.PENDING else 0,
                    last_smtp_code=smtp_code if failed else None,
                    last_smtp_reply=reply if failed else None,
                    sent_at=now if status == DeliveryStatus.SENT else None,
                )
                session.add(delivery)
                session.flush()
                ids[email] = delivery.id
        return ids

    def fetch_run(
        self,
        source: str,
        started_at: datetime,
        *,
        status: FetchStatus = FetchStatus.OK,
        problems: Sequence[str] = (),
        new_papers: int = 0,
    ) -> int:
        with session_scope(self.settings) as session:
            run = FetchRun(
                source=source,
                started_at=started_at,
                finished_at=started_at + timedelta(seconds=5),
                status=status,
                new_papers=new_papers,
                errors=len(problems),
            )
            run.problems = [
                FetchProblem(kind="entry", reason=reason, entry_ref=f"entry-{n}")
                for n, reason in enumerate(problems)
            ]
            session.add(run)
            session.flush()
            return run.id

    def scalar(self, query: sa.Select):
        with session_scope(self.settings) as session:
            return session.scalar(query)

    def scalars(self, query: sa.Select) -> list:
        with session_scope(self.settings) as session:
            return list(session.scalars(query))

    def audit(self, action: str) -> list[AuditLog]:
        return self.scalars(sa.select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id))


@pytest.fixture
def seed(cli_settings) -> Seed:
    return Seed(cli_settings)


# -- a real SMTP server that checks logins ---------------------------------------------------------
# (``smtp_server``, scripted replies that records what it accepts, is tests/support/send_env.py's.)


def _authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = auth_data.login == SMTP_USER.encode() and auth_data.password == SMTP_PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


class _Refuse:
    async def handle_DATA(self, server, session, envelope) -> str:
        raise AssertionError("doctor must never send mail")


@dataclass
class LoginSMTPServer:
    """An SMTP server that only lets ``SMTP_USER``/``SMTP_PASSWORD`` log in (without TLS)."""

    port: int

    def url(self, *, user: str = SMTP_USER, password: str = SMTP_PASSWORD) -> str:
        return f"smtp://{user}:{password}@127.0.0.1:{self.port}"


@pytest.fixture
def login_smtp_server() -> Iterator[LoginSMTPServer]:
    port = free_port()
    controller = Controller(
        _Refuse(), hostname="127.0.0.1", port=port, authenticator=_authenticate, auth_require_tls=False
    )
    controller.start()
    yield LoginSMTPServer(port)
    controller.stop()
