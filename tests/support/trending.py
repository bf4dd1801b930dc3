"""Trending fixtures: a frozen clock, and papers with signal snapshots placed in hours before now.

Registered for the whole suite: the trending tests and those of ``papermail score`` / ``trending`` use them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy.orm import Session

from papermail import config
from papermail.celery_app import reset_celery
from papermail.db.models import Frequency, Paper, SignalSnapshot, Subscriber, SubscriberStatus
from tests.conftest import Database, make_settings

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


@pytest.fixture
def frozen() -> Iterator:
    """The clock stopped at ``NOW``; ``frozen.tick(timedelta)`` moves it."""
    with freeze_time(NOW) as frozen_time:
        yield frozen_time


@dataclass
class Corpus:
    """Writes papers and their snapshots through ``session``, with times given in hours before ``now``."""

    session: Session
    now: datetime = NOW

    def paper(
        self,
        arxiv_id: str,
        *,
        age_hours: float = 24.0,
        categories: tuple[str, ...] = ("cs.LG",),
        title: str | None = None,
        published: bool = True,
    ) -> Paper:
        born = self.now - timedelta(hours=age_hours)
        paper = Paper(
            arxiv_id=arxiv_id,
            title=title if title is not None else f"Paper {arxiv_id}",
            primary_category=categories[0],
            categories=list(categories),
            published_at=born if published else None,
            first_seen_at=born,
            last_seen_at=born,
        )
        self.session.add(paper)
        self.session.flush()
        return paper

    def observe(self, paper: Paper, metric: str, *points: tuple[float, int]) -> None:
        """Snapshots of ``metric`` as (hours before now, value) pairs."""
        self.session.add_all(
            SignalSnapshot(
                paper_id=paper.id,
                source="huggingface",
                metric=metric,
                value=value,
                observed_at=self.now - timedelta(hours=hours_ago),
            )
            for hours_ago, value in points
        )
        self.session.flush()


def add_reader(session: Session, email: str, frequency: Frequency, *, since: datetime, **preferences) -> None:
    """An active subscriber since ``since``, mailed at the default 08:00 UTC, with these preferences."""
    session.add(
        Subscriber(
            email=email,
            status=SubscriberStatus.ACTIVE,
            frequency=frequency,
            created_at=since,
            confirmed_at=since,
            **preferences,
        )
    )


@pytest.fixture
def corpus(session: Session, frozen) -> Corpus:
    """Papers and snapshots in the test's rolled-back session, with the clock frozen at ``NOW``."""
    return Corpus(session)


@pytest.fixture
def committed_settings(database: Database, tmp_path: Path) -> Iterator[config.Settings]:
    """Settings for a fresh database of the test's backend, so commands see committed data."""
    current = make_settings(tmp_path, database_url=database.fresh())
    config.use_settings(current)
    reset_celery()
    yield current
    config.use_settings(None)
    reset_celery()
