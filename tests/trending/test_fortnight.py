"""A simulated fortnight: the weekly digest ranks the week's hit first, the daily one the last day."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from papermail import trending
from tests.support.feeds import API_PATH, HF_PATH, FeedServer, point_at
from tests.trending import fortnight


@pytest.fixture
def simulated(session, settings) -> Iterator[FeedServer]:
    feed_server = FeedServer()
    try:
        fortnight.route(feed_server, HF_PATH, API_PATH)
        simulated_settings = replace(
            point_at(settings, feed_server), hf_refresh_days=14, arxiv_delay_seconds=0, fetch_retries=0
        )
        fortnight.add_readers(session)
        fortnight.run_fortnight(session, simulated_settings, trending.score_windows)
        yield feed_server
    finally:
        feed_server.close()


def test_the_weekly_digest_ranks_the_weeks_hit_first_with_the_weeks_gain(session, simulated):
    top = fortnight.digest_top(session, fortnight.WEEKLY_PERIOD)
    assert top[0] == ("The week's clear hit", "+306 upvotes this week · +310★ this week · 6 days old")
    assert top[1][0] == "A strong Sunday"
    titles = [title for title, _ in top]
    assert titles.index("A Friday paper") > 1
    assert "Last week's hit" not in titles  # all its votes came before the week


def test_a_daily_digest_on_the_same_data_ranks_by_the_last_day(session, simulated):
    top = fortnight.digest_top(session, fortnight.DAILY_PERIOD)
    assert top[0] == ("A strong Sunday", "+80 upvotes today · 1 day old")
    hit = dict(top)["The week's clear hit"]
    assert hit.startswith("+") and " upvotes today · +" in hit and hit.endswith("★ today · 6 days old")


def test_the_fetches_kept_observing_the_hit_all_week(session, simulated):
    hit_pages = [r for r in simulated.requests_to(HF_PATH) if r.query.get("date") == "2026-11-24"]
    assert len(hit_pages) == 2 * 6 + 1  # twice a day from Tuesday, and on Monday morning
