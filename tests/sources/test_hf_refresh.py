"""The Hugging Face refresh: every scheduled fetch re-reads the last 14 days' listings, page by page."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from papermail.db.bookkeeping import FetchProblem
from papermail.db.models import Paper, SignalSnapshot
from papermail.sources.runner import run_fetch
from tests.support.feeds import API_PATH, HF_PATH, Reply, arxiv_api
from tests.support.hf_daily_papers import DailyPapers, FeaturedPaper, ramp

NOW = datetime(2026, 11, 30, 8, 15, tzinfo=UTC)
DAY = timedelta(days=1)


def featured(n: int, days_ago: int, upvotes_per_hour: int = 1) -> FeaturedPaper:
    at = (NOW - days_ago * DAY).replace(hour=6, minute=0)
    return FeaturedPaper(
        arxiv_id=f"2611.{n:05d}",
        title=f"Paper {n}",
        featured_at=at,
        published_at=at - DAY,
        upvotes=ramp((24 * 20, 24 * 20 * upvotes_per_hour)),
    )


@pytest.fixture
def fetch(session, fetch_settings, http_client, pacer, feed_server, api_fixtures):
    feed_server.route(API_PATH, arxiv_api(api_fixtures))
    refreshing = replace(fetch_settings, hf_refresh_days=14, hf_refresh_max_requests=40)

    def run(**overrides):
        settings = replace(refreshing, **overrides)
        return run_fetch(session, settings, "huggingface", http=http_client, pacer=pacer)

    return run


def dated_requests(feed_server) -> list[tuple[str, str]]:
    return [
        (r.query["date"], r.query.get("p", "0"))
        for r in feed_server.requests_to(HF_PATH)
        if "date" in r.query
    ]


def latest_upvotes(session) -> dict[str, int]:
    query = (
        sa.select(Paper.arxiv_id, sa.func.max(SignalSnapshot.value))
        .join(SignalSnapshot, SignalSnapshot.paper_id == Paper.id)
        .where(SignalSnapshot.metric == "upvotes")
        .group_by(Paper.arxiv_id)
    )
    return dict(session.execute(query).all())


def test_every_day_of_the_last_14_is_paged_through_until_a_short_page(fetch, session, feed_server):
    busy_day = [featured(n, days_ago=3) for n in range(230)]  # three pages: 100, 100, 30
    feed_server.route(
        HF_PATH, DailyPapers([*busy_day, featured(900, days_ago=10), featured(901, days_ago=15)])
    )
    with freeze_time(NOW):
        summary = fetch()
    assert summary.status == "ok"
    days = [(NOW - n * DAY).date().isoformat() for n in range(14)]
    expected = [(day, "0") for day in days]
    three_days_ago = days[3]
    expected[4:4] = [(three_days_ago, "1"), (three_days_ago, "2")]
    assert dated_requests(feed_server) == expected
    assert all(r.query["limit"] == "100" for r in feed_server.requests_to(HF_PATH))
    upvotes = latest_upvotes(session)
    assert len([a for a in upvotes if int(a[5:]) < 230]) == 230
    assert upvotes["2611.00900"] == 24 * 10 + 2  # featured 10 days ago at 06:00, one vote an hour
    assert "2611.00901" not in upvotes  # featured 15 days ago: outside the refresh


def test_counters_of_a_paper_that_left_the_newest_listing_keep_being_observed(fetch, session, feed_server):
    hit = featured(1, days_ago=6, upvotes_per_hour=2)
    feed_server.route(HF_PATH, DailyPapers([hit, featured(2, days_ago=0)]))
    seen = []
    for hours in (0, 12, 24):
        with freeze_time(NOW + timedelta(hours=hours)):
            fetch()
            seen.append(latest_upvotes(session)["2611.00001"])
    assert seen == [2 * (6 * 24 + 2), 2 * (6 * 24 + 14), 2 * (7 * 24 + 2)]


def test_unchanged_pages_cost_a_304_and_a_full_page_still_leads_to_the_next(fetch, session, feed_server):
    feed_server.route(HF_PATH, DailyPapers([featured(n, days_ago=2, upvotes_per_hour=0) for n in range(100)]))
    with freeze_time(NOW):
        fetch(hf_refresh_days=3)
        first = len(feed_server.requests_to(HF_PATH))
        second = fetch(hf_refresh_days=3)
    again = feed_server.requests_to(HF_PATH)[first:]
    # newest listing + today + yesterday + the full day (p=0, then p=1 which was empty)
    assert [(r.query.get("date"), r.query.get("p", "0")) for r in again] == [
        (None, "0"),
        ("2026-11-30", "0"),
        ("2026-11-29", "0"),
        ("2026-11-28", "0"),
        ("2026-11-28", "1"),
    ]
    assert all("if-none-match" in r.headers for r in again)
    assert second.unchanged_feeds == 5
    assert second.status == "ok"


def test_the_request_budget_bounds_a_run_and_says_so(fetch, session, feed_server):
    feed_server.route(HF_PATH, DailyPapers([featured(n, days_ago=n) for n in range(14)]))
    with freeze_time(NOW):
        summary = fetch(hf_refresh_max_requests=5)
    assert len(dated_requests(feed_server)) == 5
    assert summary.status == "ok"  # a notice, not a failure
    problems = session.scalars(sa.select(FetchProblem).where(FetchProblem.run_id == summary.run_id)).all()
    [notice] = [p for p in problems if p.reason.startswith("refresh")]
    assert notice.kind == "notice"
    assert notice.reason.startswith("refresh stopped at 2026-11-25: 5 requests per run")


def test_one_failed_page_costs_that_page_only(fetch, session, feed_server):
    standin = DailyPapers([featured(n, days_ago=n % 5) for n in range(10)])
    broken_day = (NOW - 2 * DAY).date().isoformat()

    def respond(request):
        if request.query.get("date") == broken_day:
            return Reply(503, b"busy")
        return standin(request)

    feed_server.route(HF_PATH, respond)
    with freeze_time(NOW):
        summary = fetch(hf_refresh_days=5)
    assert (summary.status, summary.errors) == ("partial", 1)
    assert "HTTP 503" in summary.problems[0]
    upvotes = latest_upvotes(session)
    assert sorted(upvotes) == [f"2611.{n:05d}" for n in range(10) if n % 5 != 2]
    # The failed page was retried (the usual rules), then the refresh went on with the older days.
    assert [d for d, _ in dated_requests(feed_server)].count(broken_day) == 3
    assert dated_requests(feed_server)[-1] == ((NOW - 4 * DAY).date().isoformat(), "0")


def test_a_site_that_is_down_ends_the_refresh_after_three_failed_pages(fetch, session, feed_server):
    feed_server.route(HF_PATH, lambda _request: Reply(503, b"down"))
    with freeze_time(NOW):
        summary = fetch()
    assert summary.status == "failed"
    assert len(dated_requests(feed_server)) == 3 * 3  # three pages, three attempts each
    assert summary.problems[-1].startswith("notice")
