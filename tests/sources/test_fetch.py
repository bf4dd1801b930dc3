"""Whole fetch runs against the local server, stored on SQLite and PostgreSQL."""

import threading
import time
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from freezegun import freeze_time
from sqlalchemy.orm import Session

from papermail import config
from papermail.db import get_engine
from papermail.db.bookkeeping import FetchProblem, FetchRun
from papermail.db.models import FetchStatus, Paper, SignalSnapshot
from papermail.sources.arxiv_api import ArxivApi
from papermail.sources.fetch_runs import start_run
from papermail.sources.runner import SKIPPED, run_fetch
from tests.sources.conftest import DATA_DIR
from tests.sources.test_parsers import TRICKY
from tests.support.feeds import (
    API_PATH,
    HF_PATH,
    RSS_PATH,
    Reply,
    arxiv_api,
    point_at,
    serve_file,
    status,
)

LISTING_PATH = RSS_PATH + "cs.AI"  # rss_url() appends the configured categories
NOW = datetime(2026, 4, 28, 6, 30, 10, tzinfo=UTC)


@pytest.fixture
def fetch(session, fetch_settings, http_client, pacer):
    """Run a fetch with the test's session, the local server, and the fake clock for waits."""

    def run(source, **options):
        return run_fetch(session, fetch_settings, source, http=http_client, pacer=pacer, **options)

    return run


@pytest.fixture
def recorded_api(feed_server, api_fixtures):
    feed_server.route(API_PATH, arxiv_api(api_fixtures))


def _papers(session) -> dict[str, Paper]:
    session.expire_all()
    return {paper.arxiv_id: paper for paper in session.scalars(sa.select(Paper))}


def _problems(session, run_id) -> list[tuple[str, str | None, str]]:
    query = sa.select(FetchProblem).where(FetchProblem.run_id == run_id).order_by(FetchProblem.id)
    return [(p.kind, p.entry_ref, p.reason) for p in session.scalars(query)]


def test_the_listing_is_stored_and_an_unchanged_listing_costs_nothing(
    fetch, session, feed_server, shared_fixtures
):
    feed_server.route(
        LISTING_PATH, serve_file(shared_fixtures / "arxiv-rss" / "arxiv_cs_ai.xml", etag='"a1"')
    )
    first = fetch("arxiv")
    assert (first.status, first.new_papers, first.updated_papers, first.errors) == ("ok", 3, 0, 0)
    papers = _papers(session)
    assert sorted(papers) == ["2604.21935", "2604.21936", "2604.21937"]
    assert papers["2604.21935"].authors == ["Michael Cooper", "Samuel Cooper"]
    assert papers["2604.21935"].categories == ["cs.AI", "cs.LG"]

    second = fetch("arxiv")
    assert (second.status, second.new_papers, second.unchanged_feeds) == ("ok", 0, 1)
    assert feed_server.requests_to(LISTING_PATH)[1].headers["if-none-match"] == '"a1"'
    runs = session.scalars(sa.select(FetchRun).order_by(FetchRun.id)).all()
    assert [(r.status, r.new_papers) for r in runs] == [(FetchStatus.OK, 3), (FetchStatus.OK, 0)]


def test_replacements_and_cross_lists_are_not_new_and_get_their_dates_from_the_api(
    fetch, session, feed_server, recorded_api
):
    feed_server.route(LISTING_PATH, serve_file(DATA_DIR / "arxiv_rss_announce_types.xml"))
    summary = fetch("arxiv")
    assert summary.new_papers == 1  # only the "new" announcement
    assert summary.updated_papers == 4  # replace, cross, replace-cross, absonly
    assert (summary.status, summary.rejected, summary.errors) == ("partial", 1, 0)
    [lookup] = feed_server.requests_to(API_PATH)
    assert lookup.query["id_list"] == "1605.08386,2604.30002,1707.08567,2604.30003"
    papers = _papers(session)
    replaced = papers["1605.08386"]
    # The RSS said v3; the API's v1 record only filled what was missing: its first version's date.
    assert replaced.version == 3
    assert replaced.published_at == datetime(2016, 5, 26, 17, 59, 46, tzinfo=UTC)
    assert papers["1707.08567"].published_at == datetime(2017, 7, 27, 8, 18, 33, tzinfo=UTC)
    # A cross-list's listing date is not its first version's: unknown until the API has it.
    assert papers["2604.30002"].published_at is None
    assert papers["2604.30001"].title == "Attention Is &lt;b&gt;Not&lt;/b&gt; All You Need"
    assert _problems(session, summary.run_id) == [
        ("entry", "abc", "no arXiv id in the entry"),
        ("notice", "2604.30002", "not on the arXiv API yet; looked up again next fetch"),
        ("notice", "2604.30003", "not on the arXiv API yet; looked up again next fetch"),
    ]


def test_an_error_channel_fails_the_run_instead_of_reporting_no_news(
    fetch, session, feed_server, shared_fixtures
):
    error_channel = shared_fixtures / "arxiv-rss" / "error_rss_mock_feed.xml"
    feed_server.route(LISTING_PATH, serve_file(error_channel, etag='"e1"'))
    summary = fetch("arxiv")
    assert (summary.status, summary.errors, summary.new_papers) == ("failed", 1, 0)
    assert _papers(session) == {}
    [(kind, _ref, reason)] = _problems(session, summary.run_id)
    assert kind == "feed" and "Feed error for query" in reason and "Bad archive 'astroph'" in reason
    # Its ETag was not kept: the next run gets the error again instead of a quiet 304.
    assert fetch("arxiv").status == "failed"
    assert "if-none-match" not in feed_server.requests_to(LISTING_PATH)[1].headers


def test_a_feed_that_stays_down_fails_the_run_with_the_reason(fetch, session, feed_server):
    feed_server.route(LISTING_PATH, status(503))
    summary = fetch("arxiv")
    assert summary.status == "failed"
    [(kind, _ref, reason)] = _problems(session, summary.run_id)
    assert kind == "feed" and reason.startswith("HTTP 503 Service Unavailable (gave up after 3 attempts)")


def test_tricky_feeds_never_crash_a_run_and_nothing_is_lost_silently(
    fetch, session, feed_server, shared_fixtures
):
    for name, feed_problem, rejected in TRICKY:
        feed_server.route(LISTING_PATH, serve_file(shared_fixtures / "feeds-tricky" / name))
        summary = fetch("arxiv")
        # A malformed feed with nothing usable in it failed; one that only had bad entries is partial.
        expected = "failed" if feed_problem else "partial" if rejected else "ok"
        assert (name, summary.status, summary.errors, summary.rejected) == (
            name,
            expected,
            int(feed_problem),
            rejected,
        )
        assert len(_problems(session, summary.run_id)) == int(feed_problem) + rejected
    assert _papers(session) == {}


def test_hugging_face_signals_are_appended_once_per_minute(
    fetch, session, feed_server, shared_fixtures, recorded_api
):
    feed_server.route(HF_PATH, serve_file(shared_fixtures / "huggingface" / "hf_daily_papers.json"))
    with freeze_time(NOW):
        first = fetch("huggingface")
        second = fetch("huggingface")
    assert (first.status, first.new_papers, first.signals_added) == ("ok", 30, 76)
    assert (second.new_papers, second.updated_papers, second.signals_added) == (0, 0, 0)
    assert feed_server.requests_to(HF_PATH)[0].query == {"limit": "100"}
    # Papers first seen on Hugging Face are looked up on arXiv in one batch; arXiv doesn't know
    # these (unrecorded) ids yet, which is a notice, not a failure.
    lookups = feed_server.requests_to(API_PATH)
    assert len(lookups[0].query["id_list"].split(",")) == 30
    snapshots = session.scalars(sa.select(SignalSnapshot)).all()
    assert len(snapshots) == 76
    assert {s.observed_at for s in snapshots} == {NOW.replace(second=0)}
    assert {s.source for s in snapshots} == {"huggingface"}
    msa = _papers(session)["2606.13392"]
    assert msa.on_huggingface and msa.github_url == "https://github.com/MiniMax-AI/MSA"
    stars = {(s.metric, s.value) for s in snapshots if s.paper_id == msa.id}
    assert stars == {("upvotes", 103), ("comments", 4), ("github_stars", 251)}


def test_papers_first_seen_on_hugging_face_get_arxivs_metadata(fetch, session, feed_server, recorded_api):
    feed_server.route(HF_PATH, serve_file(DATA_DIR / "hf_daily_papers_2024.json"))
    summary = fetch("huggingface", day=date(2024, 1, 23))
    assert (summary.status, summary.new_papers, summary.signals_added, summary.rejected) == (
        "partial",
        3,
        7,
        1,
    )
    assert feed_server.requests_to(HF_PATH)[0].query == {"limit": "100", "date": "2024-01-23"}
    papers = _papers(session)
    zero, proceedings, walks = papers["2104.12255"], papers["1707.08567"], papers["1605.08386"]
    assert (zero.title, zero.categories, zero.primary_category) == ("0", ["cs.CR"], "cs.CR")
    assert len(proceedings.authors) == 34  # arXiv's full list replaced Hugging Face's three
    assert walks.categories == ["math.CO", "math.ST"] and walks.github_url is None
    assert all(p.on_huggingface and p.version == 1 for p in papers.values())


def test_a_failed_lookup_is_retried_by_the_next_fetch(fetch, session, feed_server, api_fixtures):
    feed_server.route(HF_PATH, serve_file(DATA_DIR / "hf_daily_papers_2024.json"))
    feed_server.route(API_PATH, status(503))
    first = fetch("huggingface")
    assert (first.status, first.new_papers, first.errors) == ("partial", 3, 1)
    assert all(p.primary_category is None for p in _papers(session).values())
    # Next hour: arXiv is back, and Hugging Face no longer lists these papers.
    feed_server.route(HF_PATH, lambda _request: Reply(200, b"[]"))
    feed_server.route(API_PATH, arxiv_api(api_fixtures))
    second = fetch("huggingface")
    assert (second.status, second.new_papers, second.updated_papers) == ("ok", 0, 3)
    assert all(p.primary_category and p.published_at for p in _papers(session).values())


def test_progress_is_reported_stage_by_stage(fetch, feed_server, shared_fixtures, recorded_api):
    feed_server.route(HF_PATH, serve_file(shared_fixtures / "huggingface" / "hf_daily_papers.json"))
    stages = []
    fetch("huggingface", progress=lambda *stage: stages.append(stage))
    assert stages == [
        ("huggingface", "downloading daily papers", 0, None),
        ("huggingface", "storing 30 papers", 0, None),
        ("huggingface", "looking up 30 papers on arXiv", 0, 1),
        ("huggingface", "looking up 30 papers on arXiv", 1, 1),
    ]


def test_backfilling_a_day_pages_through_the_api_search(fetch, session, feed_server, api_fixtures):
    [page] = api_fixtures.glob("q_testing_s0_m100_*.xml")
    feed_server.route(API_PATH, lambda _request: Reply(200, page.read_bytes()))
    summary = fetch("arxiv", day=date(2026, 4, 27))
    assert (summary.status, summary.new_papers) == ("ok", 100)
    [request] = feed_server.requests_to(API_PATH)  # 100 results < one page of 200: done
    assert request.query == {
        "search_query": "(cat:cs.AI) AND submittedDate:[202604270000 TO 202604272359]",
        "start": "0",
        "max_results": "200",
        "sortBy": "submittedDate",
        "sortOrder": "ascending",
    }
    assert feed_server.requests_to(LISTING_PATH) == []


def test_api_paging_is_paced_and_overlapping_pages_deduplicate(
    feed_server, recorded_api, http_client, pacer, fake_time, client_settings
):
    api = ArxivApi(http_client, client_settings.arxiv_api_url, pacer)
    pages = list(api.search("all:testing", page_size=10, max_results=60))
    assert [request.query["start"] for request in feed_server.requests_to(API_PATH)] == [
        "0",
        "10",
        "20",
        "30",
        "40",
        "50",
    ]
    assert fake_time.sleeps == [3.0] * 5  # arXiv's 3 seconds between calls
    ids = [record.arxiv_id for page in pages for record in page.records]
    assert len(ids) == 60 and all(page.problems == [] for page in pages)


def test_an_api_error_is_reported_with_arxivs_reason(
    feed_server, recorded_api, http_client, pacer, client_settings
):
    [page] = ArxivApi(http_client, client_settings.arxiv_api_url, pacer).lookup(["abc"])
    assert page.failed and page.records == []
    assert page.problems[0].reason == "arXiv API error: incorrect id format for abc"


def test_a_fetch_is_skipped_while_another_of_the_same_source_runs(fetch, session):
    start_run(session, "arxiv")
    summary = fetch("arxiv")
    assert summary.status == SKIPPED and summary.run_id is None
    assert "already running" in summary.problems[0]


def test_an_unexpected_error_fails_the_run_and_releases_the_lock(session, fetch_settings, pacer):
    class BrokenClient:
        def request(self, *_args, **_kwargs):
            raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        run_fetch(session, fetch_settings, "arxiv", http=BrokenClient(), pacer=pacer)
    run = session.scalars(sa.select(FetchRun)).one()
    assert run.status == FetchStatus.FAILED
    assert "RuntimeError('bug')" in _problems(session, run.id)[0][2]
    assert start_run(session, "arxiv").status == FetchStatus.RUNNING


def test_two_processes_fetching_one_source_at_once_run_it_once(
    database, settings, feed_server, shared_fixtures
):
    """Real concurrency: two sessions on a committed database race for the lock."""
    fresh = point_at(settings, feed_server, database_url=database.fresh())
    config.use_settings(fresh)  # the scoring task goes to fresh's in-memory broker
    listing = serve_file(shared_fixtures / "arxiv-rss" / "arxiv_cs_ai.xml")

    def slow_listing(request):
        time.sleep(0.2)  # keep the winner's lock held while the other one tries
        return listing(request)

    feed_server.route(LISTING_PATH, slow_listing)
    summaries = []

    def run():
        with Session(get_engine(fresh.database_url), expire_on_commit=False) as own_session:
            summaries.append(run_fetch(own_session, fresh, "arxiv"))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(s.status for s in summaries) == ["ok", SKIPPED]
    assert len(feed_server.requests_to(LISTING_PATH)) == 1
