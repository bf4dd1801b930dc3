"""Fixtures for planning and sending: a scripted SMTP server, committed test data, worker settings.

Registered for the whole suite: digests, confirmations, bounces and the command line all send.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail import clock, config
from papermail.celery_app import reset_celery
from papermail.db import get_engine, session_factory
from papermail.db.models import (
    Base,
    Delivery,
    DeliveryStatus,
    Paper,
    ScoringRun,
    Subscriber,
    SubscriberStatus,
    TrendScore,
)
from papermail.delivery.breaker import _breakers
from tests.conftest import REDIS_URL, RUN_ID, make_settings, settings_environ, wait_for
from tests.support.smtp_server import ScriptedSMTPServer

# Small enough that leases run out, retries come due and queues go stale within a test.
FAST_SENDING = {
    "smtp_timeout": "1",
    "send_lease_seconds": "3",
    "retry_base_seconds": "0.2",
    "retry_max_seconds": "0.5",
    "requeue_after_seconds": "1",
    "breaker_threshold": "1000",
}
TOPICS = ("cs.LG", "cs.CL", "cs.CV", "cs.AI", "cs.RO", "stat.ML")


@pytest.fixture
def smtp_server() -> Iterator[ScriptedSMTPServer]:
    server = ScriptedSMTPServer().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_circuit_breakers() -> Iterator[None]:
    # The breaker is per process on purpose; tests in one process must not inherit a streak
    # (autouse for the whole suite: whatever sends mail may trip it).
    _breakers.clear()
    yield
    _breakers.clear()


# -- data -----------------------------------------------------------------------------------------


def add_ranking(session: Session, papers: int = 30, *, as_of: datetime | None = None) -> int:
    """Papers across a few topics and a finished run per window ranking them; returns the weekly run's id."""
    now = as_of or clock.now()
    existing = session.scalar(sa.select(sa.func.count()).select_from(Paper)) or 0
    rows = [
        {
            "arxiv_id": f"2611.{existing + i:05d}",
            "title": f"Paper {existing + i}: a study of things",
            "abstract": "We study things and find results. " * 8,
            "authors": ["A. Author", "B. Author"],
            "primary_category": TOPICS[i % len(TOPICS)],
            "categories": [TOPICS[i % len(TOPICS)]],
            "first_seen_at": now,
            "last_seen_at": now,
        }
        for i in range(papers)
    ]
    paper_ids = list(session.scalars(sa.insert(Paper).returning(Paper.id), rows))
    for window in ("24h", "7d"):  # daily digests pin the first, weekly ones the second
        run_id = add_finished_run(
            session,
            paper_ids,
            now,
            window=window,
            score=lambda rank: 100.0 - rank,
            evidence=lambda rank: f"+{rank} upvotes",
        )
    return run_id  # the weekly run


def add_finished_run(
    session: Session,
    paper_ids: list[int],
    now: datetime,
    *,
    window: str = "7d",
    score: Callable[[int], float],
    evidence: Callable[[int], str],
) -> int:
    """A scoring run finished at ``now`` ranking ``paper_ids`` best first; returns its id.

    ``score`` and ``evidence`` give each rank's values, called in rank order.
    """
    run = ScoringRun(as_of=now, finished_at=now, paper_count=len(paper_ids), window=window)
    session.add(run)
    session.flush()
    session.execute(
        sa.insert(TrendScore),
        [
            {
                "run_id": run.id,
                "paper_id": pid,
                "rank": rank,
                "score": score(rank),
                "evidence": evidence(rank),
            }
            for rank, pid in enumerate(paper_ids, start=1)
        ],
    )
    return run.id


def add_subscribers(
    session: Session,
    count: int,
    *,
    prefix: str = "reader",
    confirmed_at: datetime | None = None,
    **columns,
) -> list[int]:
    """Active subscribers ``<prefix><n>@example.org`` following everything we rank; returns ids."""
    confirmed = confirmed_at or clock.now() - timedelta(days=30)
    rows = [
        {
            "email": f"{prefix}{n}@example.org",
            "status": SubscriberStatus.ACTIVE,
            "topics": [TOPICS[n % len(TOPICS)], TOPICS[(n + 1) % len(TOPICS)]],
            "keywords": [],
            "created_at": confirmed,
            "confirmed_at": confirmed,
            **columns,
        }
        for n in range(count)
    ]
    return list(session.scalars(sa.insert(Subscriber).returning(Subscriber.id), rows))


def plan_week(env: SendEnv, count: int, *, queue: bool = False) -> list[int]:
    """A ranking, ``count`` subscribers and their planned 2026-W48 digests, committed; the ids.

    With ``queue``, the send batches are enqueued (on the env's broker) as the planner does.
    """
    from papermail.delivery.plan import enqueue_sends, plan

    with env.session() as session:
        add_ranking(session)
        add_subscribers(session, count)
        ids = plan(session, env.settings, now=clock.now(), period_key="2026-W48")
        if queue:
            enqueue_sends(session, ids, settings=env.settings)
        session.commit()
    return ids


def planned_week(
    make_env: Callable[..., SendEnv],
    smtp_server: ScriptedSMTPServer,
    backend: str,
    count: int,
    **overrides: str,
) -> tuple[SendEnv, list[int]]:
    """A SendEnv (from ``send_env_factory``) mailing through ``smtp_server``, and its planned 2026-W48 ids."""
    env = make_env(backend, **overrides, mail_url=smtp_server.url)
    return env, plan_week(env, count)


def deliveries(session: Session) -> list[Delivery]:
    session.expire_all()
    return list(session.scalars(sa.select(Delivery).order_by(Delivery.id)))


def status_counts(session: Session) -> dict[str, int]:
    session.expire_all()
    query = sa.select(Delivery.status, sa.func.count()).group_by(Delivery.status)
    return {status.value: n for status, n in session.execute(query)}


# -- an environment whose data other processes see --------------------------------------------------


@dataclass
class SendEnv:
    """A fresh database, a private Redis queue and the settings (and env vars) for workers using them."""

    settings: config.Settings
    environ: dict[str, str]
    queue: str
    started: list = field(default_factory=list)

    def session(self) -> Session:
        return session_factory(self.settings)()

    def queued_tasks(self) -> int:
        return redis.Redis.from_url(REDIS_URL).llen(self.queue)

    def flush_queue(self) -> None:
        redis.Redis.from_url(REDIS_URL).delete(self.queue)

    def wait_until_settled(
        self, expected: int, timeout: float = 60.0, *, sweep: bool = False
    ) -> dict[str, int]:
        """Wait until ``expected`` rows are settled (sent, skipped, failed, exhausted or uncertain)."""
        from papermail.delivery.sweep import sweep as run_sweep

        settled = {"sent", "skipped", "failed", "exhausted", "uncertain"}

        def done() -> dict[str, int] | None:
            with self.session() as session:
                if sweep:
                    run_sweep(session, self.settings, now=clock.now())
                    session.commit()
                counts = status_counts(session)
            return counts if sum(n for s, n in counts.items() if s in settled) >= expected else None

        return wait_for(done, timeout=timeout, interval=0.3, message=f"{expected} settled deliveries")


@pytest.fixture(scope="session")
def committed_databases(databases) -> Callable[[str], str]:
    """One database per backend for tests whose data other sessions and processes must see.

    Each use empties it first: creating (and finally dropping) a PostgreSQL database per test costs
    seconds, emptying one costs milliseconds.
    """
    urls: dict[str, str] = {}

    def get(backend: str) -> str:
        if backend not in urls:
            urls[backend] = databases(backend).fresh()
        _empty(urls[backend])
        return urls[backend]

    return get


def _empty(url: str) -> None:
    tables = [table.name for table in Base.metadata.sorted_tables]
    with get_engine(url).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        else:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
            conn.exec_driver_sql("DELETE FROM sqlite_sequence")  # AUTOINCREMENT counters


@pytest.fixture
def send_env_factory(committed_databases, tmp_path: Path) -> Iterator[Callable[..., SendEnv]]:
    """``make(backend="postgresql", broker="redis", **settings)``: a SendEnv, installed process-wide."""

    def make(backend: str = "postgresql", broker: str = "redis", **overrides: str) -> SendEnv:
        queue = f"papermail-test-{RUN_ID}-{uuid.uuid4().hex[:8]}"
        values = {**FAST_SENDING, "database_url": committed_databases(backend), "celery_queue": queue}
        if broker == "redis":
            values["broker_url"] = REDIS_URL
        values.update(overrides)
        data_dir = tmp_path / f"env-{uuid.uuid4().hex[:6]}"
        data_dir.mkdir()
        environ = settings_environ(data_dir, **values)
        settings = make_settings(data_dir, **values)
        config.use_settings(settings)
        reset_celery()
        return SendEnv(settings, environ, queue)

    yield make
    config.use_settings(None)
    reset_celery()


def sent_statuses(rows: list[Delivery]) -> set[DeliveryStatus]:
    return {row.status for row in rows}
