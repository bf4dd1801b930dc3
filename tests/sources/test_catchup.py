"""Catching up on start: which sources are stale, and which arXiv days the backfill fetches."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from papermail.db.bookkeeping import FetchRun
from papermail.db.models import FetchStatus, Subscriber, SubscriberStatus
from papermail.sources.catchup import plan_catch_up

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)  # a Saturday morning


def _run(session, source: str, started_at: datetime, status: FetchStatus = FetchStatus.OK) -> None:
    session.add(FetchRun(source=source, started_at=started_at, finished_at=started_at, status=status))
    session.flush()


def _plan(session, days: int = 7):
    return plan_catch_up(session, now=NOW, backfill_days=days, categories=("cs.LG",))


def test_a_fresh_install_fetches_both_and_backfills_the_last_days(session):
    session.add(
        Subscriber(
            email="ann@example.org",
            status=SubscriberStatus.ACTIVE,
            topics=["stat.ML", "cs.LG"],
            created_at=NOW,
        )
    )
    plan = _plan(session, days=3)
    assert plan.sources == ["arxiv", "huggingface"]
    assert plan.days == [date(2026, 12, 3), date(2026, 12, 4), date(2026, 12, 5)]
    assert plan.categories == ["cs.LG", "stat.ML"]


def test_fresh_data_needs_nothing(session):
    _run(session, "arxiv", NOW - timedelta(hours=3))
    _run(session, "huggingface", NOW - timedelta(minutes=40))
    plan = _plan(session)
    assert (plan.sources, plan.days) == ([], [])


def test_a_failed_fetch_does_not_count_and_the_backfill_starts_at_the_last_good_one(session):
    _run(session, "arxiv", NOW - timedelta(days=2, hours=1))
    _run(session, "arxiv", NOW - timedelta(hours=1), FetchStatus.FAILED)
    _run(session, "huggingface", NOW - timedelta(minutes=40))
    plan = _plan(session)
    assert plan.sources == ["arxiv"]
    assert plan.days == [date(2026, 12, 3), date(2026, 12, 4), date(2026, 12, 5)]


def test_backfill_days_zero_turns_the_backfill_off(session):
    plan = _plan(session, days=0)
    assert plan.sources == ["arxiv", "huggingface"] and plan.days == []
