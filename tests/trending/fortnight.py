"""A simulated fortnight of Hugging Face listings, fetched on schedule, and the digests it yields.

Featured papers' counters grow on the stand-in for ``/api/daily_papers`` as the frozen clock moves.
The week that ends on Monday 30 November 08:00 UTC has a clear hit (featured Tuesday, 306 upvotes
by Monday, most of them in its first days), a Friday paper with 20 upvotes, a Sunday paper with a
strong last day, and last week's hit, whose votes all came before the week. Used by
``test_fortnight.py`` and by ``scripts/weekly-digest-demo`` (which prints the weekly digest).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from freezegun import freeze_time
from sqlalchemy.orm import Session

from papermail.config import Settings
from papermail.db.models import Delivery, Digest, Frequency, Paper, Subscriber, TrendScore
from papermail.delivery.plan import plan
from papermail.sources.arxiv_api import Pacer
from papermail.sources.http import HttpClient
from papermail.sources.runner import run_fetch
from tests.support.feeds import Reply
from tests.support.hf_daily_papers import DailyPapers, FeaturedPaper, ramp
from tests.support.trending import add_reader

START = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)  # a Monday
MONDAY_8 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # the weekly digest's send time
FETCH_TIMES = ((6, 15), (18, 15))  # twice a day, after the day's listing appears at 06:00
WEEKLY_PERIOD, DAILY_PERIOD = "2026-W49", "2026-11-30"
EMPTY_ATOM = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" '
    b'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/"><title>arXiv Query</title>'
    b"<opensearch:totalResults>0</opensearch:totalResults></feed>\n"
)


def _featured(arxiv_id: str, title: str, day: int, upvotes, stars=None) -> FeaturedPaper:
    at = START + timedelta(days=day, hours=6)
    published = at - timedelta(hours=12)  # submitted the evening before it is featured
    return FeaturedPaper(arxiv_id, title, at, published, ramp(*upvotes), ramp(*stars) if stars else None)


def papers() -> list[FeaturedPaper]:
    """The fortnight's featured papers (day 0 is Monday 16 November)."""
    week_hit = _featured(
        "2611.20001",
        "The week's clear hit",
        8,  # Tuesday 24 November
        [(24, 120), (48, 200), (96, 295), (144, 306)],
        [(48, 250), (144, 310)],
    )
    return [
        _featured("2611.10001", "Last week's hit", 1, [(48, 400), (120, 520)]),
        week_hit,
        _featured("2611.20002", "A Friday paper", 11, [(12, 15), (48, 20)]),
        _featured("2611.20003", "A strong Sunday", 13, [(24, 80)]),
        _featured("2611.20004", "Monday morning", 14, [(2, 5)]),
        # A modest paper every other weekday of both weeks.
        *(
            _featured(
                f"2611.3{day:04d}", f"A modest paper of day {day}", day, [(24, 12 + day), (72, 30 + day)]
            )
            for day in (0, 2, 3, 4, 7, 9, 10)
        ),
    ]


def route(feed_server, hf_path: str, api_path: str) -> None:
    """Serve the fortnight's listings, and an arXiv API that knows none of the papers."""
    feed_server.route(hf_path, DailyPapers(papers()))
    feed_server.route(
        api_path, lambda _request: Reply(200, EMPTY_ATOM, {"Content-Type": "application/atom+xml"})
    )


def add_readers(session: Session) -> None:
    """A weekly and a daily reader, both sent at 08:00 UTC, following what the papers study."""
    for email, frequency in (
        ("weekly@example.org", Frequency.WEEKLY),
        ("daily@example.org", Frequency.DAILY),
    ):
        add_reader(session, email, frequency, since=START, keywords=["study"])
    session.commit()


def run_fortnight(session: Session, settings: Settings, score: Callable[[Session, Settings], None]) -> None:
    """Fetch Hugging Face on its schedule from START to MONDAY_8, scoring after each fetch and at the end."""
    with freeze_time(START) as frozen, HttpClient.from_settings(settings) as client:
        for day in range(15):
            for hour, minute in FETCH_TIMES:
                at = START + timedelta(days=day, hours=hour, minutes=minute)
                if at > MONDAY_8:
                    break
                frozen.move_to(at)
                run_fetch(session, settings, "huggingface", http=client, pacer=Pacer(0))
                score(session, settings)
                session.commit()
        frozen.move_to(MONDAY_8)
        score(session, settings)  # the hourly safety net
        session.commit()
        plan(session, settings, now=MONDAY_8)
        session.commit()


def digest_top(
    session: Session, period_key: str, size: int = 5, *, email: str | None = None
) -> list[tuple[str, str]]:
    """(title, evidence) of the first ``size`` papers of the period's digest (``email``'s), as planned."""
    query = sa.select(Delivery).where(Delivery.period_key == period_key)
    if email:
        query = query.join(Subscriber).where(Subscriber.email == email)
    delivery = session.scalars(query).one()
    run_id = session.scalar(sa.select(Digest.scoring_run_id).where(Digest.id == delivery.digest_id))
    rows = session.execute(
        sa.select(Paper.id, Paper.title, TrendScore.evidence)
        .join(TrendScore, TrendScore.paper_id == Paper.id)
        .where(TrendScore.run_id == run_id, Paper.id.in_(delivery.paper_ids))
    ).all()
    by_id = {paper_id: (title, evidence) for paper_id, title, evidence in rows}
    return [by_id[paper_id] for paper_id in delivery.paper_ids[:size]]
