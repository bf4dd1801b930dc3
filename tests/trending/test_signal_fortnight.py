"""A simulated fortnight with every source: a robotics paper no Hugging Face list featured, whose code
gains stars and whose Hacker News story takes off, tops a cs.RO reader's weekly digest.

Hugging Face, GitHub, Hacker News, Bluesky and Semantic Scholar are fetched twice a day from stand-ins
built on their recorded answers, under a frozen clock that moves through the fortnight. Along the way
each community source fails once (a 403 rate limit, a 429, a malformed answer, another 429), and the
stand-ins page, hand out cursors, answer 404 for a renamed repository and null for unknown papers.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from papermail import trending
from papermail.db.bookkeeping import FetchRun
from papermail.db.models import FetchStatus, Frequency, Paper
from papermail.delivery.plan import plan
from papermail.sources.arxiv_api import Pacer
from papermail.sources.http import HttpClient
from papermail.sources.ingest import upsert_papers
from papermail.sources.records import PaperRecord
from papermail.sources.runner import BLUESKY, GITHUB, HACKERNEWS, HUGGINGFACE, SEMANTIC_SCHOLAR, run_fetch
from tests.support.feeds import API_PATH, HF_PATH, FeedServer, Reply, point_at
from tests.support.hf_daily_papers import ramp
from tests.support.signal_apis import Post, SignalApis, Story, github_rate_limited, malformed, s2_rate_limited
from tests.support.trending import add_reader
from tests.trending import fortnight

START, MONDAY_8 = fortnight.START, fortnight.MONDAY_8
SOURCES = (HUGGINGFACE, GITHUB, HACKERNEWS, BLUESKY, SEMANTIC_SCHOLAR)
ROBOT_HIT = "2611.50001"


def _day(day: int, hours: float = 0) -> datetime:
    return START + timedelta(days=day, hours=hours)


# (arXiv id, title, announced on day, abstract)
ROBOT_PAPERS = (
    (ROBOT_HIT, "Grasping anything from three demonstrations", 10, "Code: https://github.com/robolab/grasp3"),
    ("2611.50002", "A robot paper with a few stars", 9, "See https://github.com/small/bot for code."),
    ("2611.50003", "A cited robot paper", 3, "A survey of legged locomotion."),
    ("2611.50004", "A robot paper on Bluesky", 12, "Soft grippers."),
    ("2611.50005", "A renamed repository", 11, "https://github.com/gone/renamed"),
    ("2611.50006", "A fresh robot paper", 14, "Brand new this morning."),
)


def _announce(session, day: int) -> None:
    """The papers arXiv's cs.RO listing announces on ``day`` (stored as the arXiv fetch stores them)."""
    records = [
        PaperRecord(
            arxiv_id,
            1,
            title,
            abstract,
            ("A. Roboticist",),
            "cs.RO",
            ("cs.RO",),
            published_at=_day(on_day),
        )
        for arxiv_id, title, on_day, abstract in ROBOT_PAPERS
        if on_day == day
    ]
    upsert_papers(session, records, now=_day(day))
    session.commit()


def _hours_since(at: datetime, day: int, hours: float = 0) -> float:
    return (at - _day(day, hours)) / timedelta(hours=1)


def _world_at(apis: SignalApis, at: datetime) -> None:
    """What the four communities show at ``at``: counters grow as the clock moves."""
    stars = ramp((24, 100), (72, 300))(_hours_since(at, 10))
    apis.github.stars = {"robolab/grasp3": 40 + stars, "small/bot": 5 + ramp((96, 20))(_hours_since(at, 9))}
    hn_story = Story(
        f"https://arxiv.org/abs/{ROBOT_HIT}",
        ramp((12, 180), (48, 250))(_hours_since(at, 10, 12)),
        ramp((48, 80))(_hours_since(at, 10, 12)),
        int(_day(10, 12).timestamp()),
        1,
    )
    others = [
        Story("https://arxiv.org/pdf/2611.50002v1", 15, 3, int(_day(9, 20).timestamp()), 2),
        Story("https://arxiv.org/abs/2611.99999", 40, 10, int(_day(9, 2).timestamp()), 3),  # not followed
        Story("https://arxiv.org/html/2611.50003v2", 4, 0, int(_day(4).timestamp()), 4),
    ]
    apis.hn.stories = [story for story in [hn_story, *others] if story.created_at <= at.timestamp()]
    apis.bluesky.posts = [
        post
        for post, from_day in (
            (Post(f"https://arxiv.org/abs/{ROBOT_HIT}v1", ramp((24, 50))(_hours_since(at, 10, 6)), 0), 10),
            (
                Post(f"https://arxiv.org/abs/{ROBOT_HIT}", ramp((24, 7))(_hours_since(at, 11)), in_text=True),
                11,
            ),
            (Post("https://arxiv.org/abs/2611.50004", ramp((24, 30))(_hours_since(at, 12)), 2), 12),
            (Post("https://example.org/not-a-paper", 500), 0),
        )
        if at >= _day(from_day)
    ]
    apis.s2.citations = {"2611.50003": 3 + int(_hours_since(at, 3) // 48)}
    apis.s2.tldrs = {"2611.50003": "A survey of how legged robots learned to walk."}


# Each community source fails once, at one of its fetches.
FAILURES = {
    _day(11, 6.25): ("github", lambda: [github_rate_limited()]),
    _day(12, 6.25): ("hn", lambda: [Reply(429, b'{"message": "slow down"}', {"Retry-After": "1"})]),
    _day(12, 18.25): ("bluesky", lambda: [malformed()]),
    _day(13, 6.25): ("s2", lambda: [s2_rate_limited()]),
}


@pytest.fixture
def simulated(session, settings):
    server = FeedServer()
    try:
        apis = SignalApis(server)
        fortnight.route(server, HF_PATH, API_PATH)
        simulated_settings = replace(
            point_at(settings, server, **apis.settings_overrides()),
            hf_refresh_days=14,
            arxiv_delay_seconds=0,
            fetch_retries=0,
        )
        add_reader(session, "robots@example.org", Frequency.WEEKLY, since=START, topics=["cs.RO"])
        session.commit()
        _run(session, simulated_settings, apis)
        yield apis
    finally:
        server.close()


def _run(session, settings, apis: SignalApis) -> None:
    with freeze_time(START) as frozen, HttpClient.from_settings(settings) as client:
        for day in range(15):
            frozen.move_to(_day(day))
            _announce(session, day)
            for hour, minute in fortnight.FETCH_TIMES:
                at = _day(day, hour + minute / 60)
                if at > MONDAY_8:
                    break
                frozen.move_to(at)
                _world_at(apis, at)
                if at in FAILURES:
                    name, replies = FAILURES[at]
                    getattr(apis, name).fail_next = replies()
                for source in SOURCES:
                    run_fetch(session, settings, source, http=client, pacer=Pacer(0))
                trending.score_windows(session, settings)
                session.commit()
        frozen.move_to(MONDAY_8)
        trending.score_windows(session, settings)
        session.commit()
        plan(session, settings, now=MONDAY_8)
        session.commit()


def _digest(session) -> list[tuple[str, str]]:
    """(title, evidence) of the robotics reader's weekly digest, in order."""
    return fortnight.digest_top(session, fortnight.WEEKLY_PERIOD, 10, email="robots@example.org")


def test_a_robotics_paper_with_stars_and_a_hacker_news_story_tops_the_weekly_digest(session, simulated):
    digest = _digest(session)
    assert digest[0] == (
        "Grasping anything from three demonstrations",
        "+340★ this week · 250 points on Hacker News · 57 likes on Bluesky · 4 days old",
    )
    assert not session.scalar(sa.select(Paper.on_huggingface).where(Paper.arxiv_id == ROBOT_HIT))
    evidence = dict(digest)
    assert evidence["A robot paper on Bluesky"] == "30 likes on Bluesky · 2 reposts on Bluesky · 2 days old"
    assert evidence["A fresh robot paper"] == "no signals yet · 8 hours old"
    assert evidence["A cited robot paper"].startswith("8 citations · ")


def test_each_source_failed_once_and_the_fetches_went_on(session, simulated):
    runs = session.execute(sa.select(FetchRun.source, FetchRun.status)).all()
    for source in SOURCES[1:]:
        statuses = [status for name, status in runs if name == source]
        assert FetchStatus.FAILED in statuses or FetchStatus.PARTIAL in statuses, source
        assert statuses[-1] == FetchStatus.OK, source
    tldr = session.scalar(sa.select(Paper.tldr).where(Paper.arxiv_id == "2611.50003"))
    assert tldr == "A survey of how legged robots learned to walk."
