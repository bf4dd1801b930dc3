"""Catching up on start: which sources are stale, and which arXiv days to backfill in the background.

A fresh install (or one that was down for days) should not wait for the schedule: beat asks for a
catch-up when it starts, and a worker fetches each stale source at once (the fetch then ranks
again), then backfills the missing arXiv days from the API for the configured and subscribed
categories, one day after another so the API's pacing holds across tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail.db.bookkeeping import FetchRun
from papermail.db.models import FetchStatus, Subscriber, SubscriberStatus
from papermail.sources.runner import ARXIV, HUGGINGFACE

# A source whose last good fetch is older than this is fetched on start. Hugging Face is fetched
# hourly; arXiv publishes once a weekday, and a conditional GET of an unchanged listing is free.
STALE_AFTER = {ARXIV: timedelta(hours=12), HUGGINGFACE: timedelta(hours=2)}
GOOD = (FetchStatus.OK, FetchStatus.PARTIAL)


@dataclass(frozen=True)
class CatchUp:
    """What to do now: fetch ``sources``; then backfill ``days`` of arXiv in ``categories``."""

    sources: list[str] = field(default_factory=list)
    days: list[date] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)


def last_good_fetch(session: Session, source: str) -> datetime | None:
    """When the last fetch of ``source`` that did not fail started."""
    return session.scalar(
        sa.select(sa.func.max(FetchRun.started_at)).where(
            FetchRun.source == source, FetchRun.status.in_(GOOD)
        )
    )


def subscribed_categories(session: Session) -> list[str]:
    """Every topic an active subscriber follows."""
    topics: set[str] = set()
    query = sa.select(Subscriber.topics).where(Subscriber.status == SubscriberStatus.ACTIVE)
    for chosen in session.scalars(query.execution_options(yield_per=1000)):
        topics.update(chosen or ())
    return sorted(topics)


def plan_catch_up(
    session: Session, *, now: datetime, backfill_days: int, categories: tuple[str, ...]
) -> CatchUp:
    """The stale sources, and the arXiv days since the last good arXiv fetch (at most ``backfill_days``)."""
    last = {source: last_good_fetch(session, source) for source in STALE_AFTER}
    stale = [s for s, at in last.items() if at is None or now - at > STALE_AFTER[s]]
    if ARXIV not in stale or backfill_days == 0:
        return CatchUp(stale)
    today = now.date()
    first = today - timedelta(days=backfill_days - 1)
    if last[ARXIV] is not None:
        first = max(first, last[ARXIV].date())
    days = [first + timedelta(days=n) for n in range((today - first).days + 1)]
    return CatchUp(stale, days, sorted({*categories, *subscribed_categories(session)}))
