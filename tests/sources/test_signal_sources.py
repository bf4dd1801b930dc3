"""The community sources against stand-ins of their APIs: what each stores, how it pages, what it costs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from papermail import config
from papermail.celery_app import reset_celery
from papermail.db.bookkeeping import FetchProblem, FetchRun
from papermail.db.models import FetchStatus, Paper, SignalSnapshot
from papermail.sources.arxiv_api import Pacer
from papermail.sources.http import HttpClient
from papermail.sources.runner import BLUESKY, GITHUB, HACKERNEWS, SEMANTIC_SCHOLAR, SKIPPED, run_fetch
from tests.support.feeds import Reply, never_answer, point_at
from tests.support.signal_apis import (
    HN_SEARCH,
    PAPER_BATCH,
    SEARCH_POSTS,
    Post,
    SignalApis,
    Story,
    github_rate_limited,
    malformed,
    s2_rate_limited,
)

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


@pytest.fixture
def apis(feed_server) -> SignalApis:
    return SignalApis(feed_server)


@pytest.fixture
def signal_settings(settings, feed_server, apis) -> Iterator[config.Settings]:
    pointed = point_at(settings, feed_server, **apis.settings_overrides(), fetch_retries=1)
    config.use_settings(pointed)
    reset_celery()
    with freeze_time(NOW):
        yield pointed


@pytest.fixture
def fetch(session, signal_settings, fake_time):
    """Run one source's fetch now, on the fake clock for retries and pacing."""

    def run(source: str, **overrides):
        settings = replace(signal_settings, **overrides)
        with HttpClient.from_settings(settings, sleep=fake_time.sleep) as client:
            return run_fetch(session, settings, source, http=client, pacer=Pacer(0))

    return run


def add_paper(session, arxiv_id: str, *, days_old: float = 2, abstract: str = "", github_url=None) -> Paper:
    born = NOW - timedelta(days=days_old)
    paper = Paper(
        arxiv_id=arxiv_id,
        title=f"Paper {arxiv_id}",
        abstract=abstract,
        primary_category="cs.RO",
        categories=["cs.RO"],
        published_at=born,
        github_url=github_url,
        first_seen_at=born,
        last_seen_at=born,
    )
    session.add(paper)
    session.commit()
    return paper


def values(session, source: str) -> dict[tuple[str, str], int]:
    """The latest value of each (paper, metric) the source recorded."""
    rows = session.execute(
        sa.select(Paper.arxiv_id, SignalSnapshot.metric, sa.func.max(SignalSnapshot.value))
        .join(Paper, Paper.id == SignalSnapshot.paper_id)
        .where(SignalSnapshot.source == source)
        .group_by(Paper.arxiv_id, SignalSnapshot.metric)
    ).all()
    return {(arxiv_id, metric): value for arxiv_id, metric, value in rows}


def problems(session, run_id: int) -> list[str]:
    rows = session.scalars(
        sa.select(FetchProblem).where(FetchProblem.run_id == run_id).order_by(FetchProblem.id)
    )
    return [f"{p.kind}: {p.reason}" for p in rows]


# -- GitHub ---------------------------------------------------------------------------------------


def test_github_snapshots_the_stars_of_linked_repositories(session, apis, fetch, feed_server):
    add_paper(session, "2611.00001", github_url="https://github.com/lab/hf-linked")
    add_paper(session, "2611.00002", abstract="We release code at https://github.com/lab/in-abstract.")
    add_paper(session, "2611.00003", abstract="Code: github.com/lab/shared")
    add_paper(session, "2611.00004", abstract="Same code: https://github.com/lab/shared")
    add_paper(session, "2611.00005", abstract="https://github.com/lab/renamed")
    add_paper(session, "2610.00006", days_old=20, abstract="https://github.com/lab/too-old")
    add_paper(session, "2611.00007", abstract="no code")
    apis.github.stars = {"lab/hf-linked": 120, "lab/in-abstract": 7, "lab/shared": 55, "lab/too-old": 900}

    summary = fetch(GITHUB)

    assert summary.status == FetchStatus.OK  # a renamed repository is a notice, not an error
    assert values(session, GITHUB) == {
        ("2611.00001", "github_stars"): 120,
        ("2611.00002", "github_stars"): 7,
        ("2611.00003", "github_stars"): 55,
        ("2611.00004", "github_stars"): 55,
    }
    paths = sorted(r.path for r in feed_server.requests if "/repos/" in r.path)
    assert [p.rsplit("/", 1)[1] for p in paths] == ["hf-linked", "in-abstract", "renamed", "shared"]
    assert any("renamed or deleted" in p for p in problems(session, summary.run_id))


def test_github_asks_again_conditionally_and_a_304_keeps_the_count(session, apis, fetch, feed_server):
    add_paper(session, "2611.00001", abstract="https://github.com/lab/repo")
    apis.github.stars = {"lab/repo": 40}
    fetch(GITHUB)
    with freeze_time(NOW + timedelta(hours=1)):
        again = fetch(GITHUB)
    assert again.unchanged_feeds == 1
    assert feed_server.requests[-1].headers["if-none-match"] == 'W/"lab/repo-40"'
    observed = session.scalars(sa.select(SignalSnapshot.value).where(SignalSnapshot.source == GITHUB)).all()
    assert observed == [40, 40]  # a snapshot per run: the repository was looked at
    with freeze_time(NOW + timedelta(hours=2)):
        apis.github.stars["lab/repo"] = 340
        fetch(GITHUB)
    assert values(session, GITHUB)[("2611.00001", "github_stars")] == 340


def test_a_github_rate_limit_ends_the_run_not_the_fetch(session, apis, fetch):
    for n in range(1, 4):
        add_paper(session, f"2611.0000{n}", days_old=n, abstract=f"https://github.com/lab/repo{n}")
    apis.github.stars = {"lab/repo1": 1, "lab/repo2": 2, "lab/repo3": 3}
    apis.github.fail_next = [None, github_rate_limited()]

    summary = fetch(GITHUB)

    assert summary.status == FetchStatus.PARTIAL
    assert values(session, GITHUB) == {("2611.00001", "github_stars"): 1}  # the newest paper first
    reasons = problems(session, summary.run_id)
    assert any("rate limited: HTTP 403" in r and "PAPERMAIL_GITHUB_TOKEN" in r for r in reasons)
    with freeze_time(NOW + timedelta(hours=1)):
        fetch(GITHUB)  # the next run: the ones never looked at come first
    assert len(values(session, GITHUB)) == 3


def test_github_keeps_to_its_budget_and_takes_turns(session, apis, fetch, feed_server):
    for n in range(1, 5):
        add_paper(session, f"2611.0000{n}", days_old=n, abstract=f"https://github.com/lab/repo{n}")
    apis.github.stars = {f"lab/repo{n}": n for n in range(1, 5)}

    summary = fetch(GITHUB, github_max_requests=2)

    assert len([r for r in feed_server.requests if "/repos/" in r.path]) == 2
    assert set(values(session, GITHUB)) == {("2611.00001", "github_stars"), ("2611.00002", "github_stars")}
    assert any("budget" in p for p in problems(session, summary.run_id))
    with freeze_time(NOW + timedelta(hours=1)):
        fetch(GITHUB, github_max_requests=2)
    assert len(values(session, GITHUB)) == 4


def test_without_a_token_the_budget_stays_under_githubs_hourly_limit(tmp_path):
    from tests.conftest import make_settings

    assert make_settings(tmp_path).github_max_requests == 50
    assert make_settings(tmp_path, github_token="t0k3n").github_max_requests == 1000
    with pytest.raises(config.ConfigError, match="PAPERMAIL_GITHUB_MAX_REQUESTS: must be at most 60"):
        make_settings(tmp_path, github_max_requests="61")


# -- Hacker News ----------------------------------------------------------------------------------


def _epoch(days_ago: float) -> int:
    return int((NOW - timedelta(days=days_ago)).timestamp())


def test_hacker_news_pages_to_the_last_page_and_sums_a_papers_stories(session, apis, fetch, feed_server):
    add_paper(session, "2611.00001")
    add_paper(session, "2611.00002")
    apis.hn.stories = [
        Story("https://arxiv.org/abs/2611.00001", 250, 80, _epoch(1), 1),
        Story("https://arxiv.org/pdf/2611.00001v2", 30, 5, _epoch(2), 2),
        Story("http://export.arxiv.org/abs/2611.00001v1", 3, 0, _epoch(3), 3),
        Story("https://arxiv.org/html/2611.00002v3", 12, 4, _epoch(4), 4),
        Story("https://arxiv.org/abs/2611.09999", 99, 9, _epoch(1), 5),  # a paper we don't follow
        Story("https://blog.example.org/why-arxiv.org-matters", 500, 90, _epoch(1), 6),
        Story("https://arxiv.org/list/cs.RO/new", 7, 1, _epoch(2), 7),
        Story("https://arxiv.org/abs/2611.00002", 1000, 1, _epoch(20), 8),  # outside the 14 days
    ]

    summary = fetch(HACKERNEWS)

    assert summary.status == FetchStatus.OK
    assert values(session, HACKERNEWS) == {
        ("2611.00001", "hn_points"): 283,
        ("2611.00001", "hn_comments"): 85,
        ("2611.00002", "hn_points"): 12,
        ("2611.00002", "hn_comments"): 4,
    }
    pages = feed_server.requests_to(HN_SEARCH)
    assert [r.query["page"] for r in pages] == ["0", "1", "2"]  # 7 stories, 3 a page
    assert all(r.query["numericFilters"] == f"created_at_i>{_epoch(14)}" for r in pages)


def test_hacker_news_within_its_budget_keeps_what_it_read(session, apis, fetch, feed_server):
    add_paper(session, "2611.00001")
    apis.hn.stories = [
        Story("https://arxiv.org/abs/2611.00001", 10 * n, n, _epoch(n / 10), n) for n in range(1, 8)
    ]
    summary = fetch(HACKERNEWS, hn_max_requests=2)
    assert len(feed_server.requests_to(HN_SEARCH)) == 2
    assert values(session, HACKERNEWS)[("2611.00001", "hn_points")] == 210  # the newest six
    assert any("budget" in p for p in problems(session, summary.run_id))


# -- Bluesky --------------------------------------------------------------------------------------


def test_bluesky_is_off_until_configured(session, fetch):
    summary = fetch(BLUESKY, bluesky_handle=None, bluesky_app_password=None)
    assert summary.status == SKIPPED
    assert "PAPERMAIL_BLUESKY_HANDLE" in summary.problems[0]
    assert session.scalar(sa.select(sa.func.count()).select_from(FetchRun)) == 0


def test_bluesky_logs_in_and_pages_by_cursor(session, apis, fetch, feed_server):
    add_paper(session, "2611.00001")
    add_paper(session, "2611.00002")
    apis.bluesky.posts = [
        Post("https://arxiv.org/abs/2611.00001", 40, 5, 2),
        Post("https://arxiv.org/pdf/2611.00001v1", 17, 1, 0, in_text=True),
        Post("https://arxiv.org/abs/2611.00002", 3),
        Post("https://www.nber.org/system/files/working_papers/w33801/w33801.pdf", 58),
        Post("https://arxiv.org/html/2611.00002v2", 1, 1),
    ]

    summary = fetch(BLUESKY)

    assert summary.status == FetchStatus.OK
    assert values(session, BLUESKY) == {
        ("2611.00001", "bluesky_likes"): 57,
        ("2611.00001", "bluesky_reposts"): 6,
        ("2611.00001", "bluesky_quotes"): 2,
        ("2611.00002", "bluesky_likes"): 4,
        ("2611.00002", "bluesky_reposts"): 1,
    }
    searches = feed_server.requests_to(SEARCH_POSTS)
    assert [r.query.get("cursor") for r in searches] == [None, "3"]
    assert searches[0].query["since"] == "2026-11-16T08:00:00Z" and searches[0].query["domain"] == "arxiv.org"


def test_a_refused_bluesky_login_fails_the_run_and_says_what_to_check(session, fetch):
    summary = fetch(BLUESKY, bluesky_app_password="wrong")
    assert summary.status == FetchStatus.FAILED
    assert (
        "login failed: HTTP 401" in summary.problems[0]
        and "PAPERMAIL_BLUESKY_APP_PASSWORD" in summary.problems[0]
    )


# -- Semantic Scholar -----------------------------------------------------------------------------


def test_semantic_scholar_stores_citations_and_tldrs_and_takes_nulls_in_stride(
    session, apis, fetch, fake_time
):
    for n in range(1, 4):
        add_paper(session, f"2611.0000{n}", days_old=n)
    add_paper(session, "2608.00009", days_old=70)  # older than 60 days: not asked
    apis.s2.citations = {"2611.00001": 12, "2611.00003": 0}
    apis.s2.tldrs = {"2611.00001": "A robot learns to grasp from  three demonstrations."}

    summary = fetch(SEMANTIC_SCHOLAR)

    assert summary.status == FetchStatus.OK
    assert values(session, SEMANTIC_SCHOLAR) == {
        ("2611.00001", "citations"): 12,
        ("2611.00001", "influential_citations"): 3,
        ("2611.00003", "citations"): 0,
        ("2611.00003", "influential_citations"): 0,
    }
    tldrs = dict(session.execute(sa.select(Paper.arxiv_id, Paper.tldr)).all())
    assert tldrs["2611.00001"] == "A robot learns to grasp from three demonstrations."
    assert tldrs["2611.00002"] is None
    assert apis.s2.batch_sizes == [3]


def test_semantic_scholar_asks_in_batches_of_500_paced_a_second_apart(session, apis, fetch, fake_time):
    session.add_all(
        Paper(
            arxiv_id=f"2611.{n:05d}",
            title="t",
            published_at=NOW - timedelta(hours=n),
            first_seen_at=NOW,
            last_seen_at=NOW,
        )
        for n in range(1, 502)
    )
    session.commit()
    fetch(SEMANTIC_SCHOLAR)
    assert apis.s2.batch_sizes == [500, 1]
    assert len(fake_time.sleeps) == 0 or all(s <= 1.0 for s in fake_time.sleeps)


def test_a_semantic_scholar_429_is_retried_after_the_wait_it_asks(session, apis, fetch, fake_time):
    add_paper(session, "2611.00001")
    apis.s2.citations = {"2611.00001": 5}
    apis.s2.fail_next = [Reply(429, s2_rate_limited().body, {"Retry-After": "3"})]
    summary = fetch(SEMANTIC_SCHOLAR)
    assert summary.status == FetchStatus.OK
    assert 3.0 in fake_time.sleeps
    assert values(session, SEMANTIC_SCHOLAR)[("2611.00001", "citations")] == 5


# -- failures: one source failing never blocks another --------------------------------------------


def _too_many(_request) -> Reply:
    return Reply(429, b'{"message": "slow down"}', {"Retry-After": "1"})


# Each source's own rate-limit answer where one is recorded (GitHub's 403, Semantic Scholar's 429).
RATE_LIMITED = {
    GITHUB: github_rate_limited,
    HACKERNEWS: _too_many,
    BLUESKY: _too_many,
    SEMANTIC_SCHOLAR: s2_rate_limited,
}
PATHS = {HACKERNEWS: HN_SEARCH, BLUESKY: SEARCH_POSTS, SEMANTIC_SCHOLAR: PAPER_BATCH}


def _break(apis: SignalApis, source: str, failure: str) -> None:
    responder = {
        "down": lambda _request: Reply(503, b"down for maintenance"),
        "slow": never_answer(apis.server),  # the client times out
        "rate-limited": RATE_LIMITED[source],
        "malformed": lambda _request: malformed(),
    }[failure]
    if source == GITHUB:
        apis.server.route_prefix("/github/repos/", responder)
    else:
        apis.server.route(PATHS[source], responder)


def _feed_all(session, apis: SignalApis) -> None:
    add_paper(session, "2611.00001", abstract="https://github.com/lab/repo")
    apis.github.stars = {"lab/repo": 10}
    apis.hn.stories = [Story("https://arxiv.org/abs/2611.00001", 25, 2, _epoch(1), 1)]
    apis.bluesky.posts = [Post("https://arxiv.org/abs/2611.00001", 9)]
    apis.s2.citations = {"2611.00001": 4}


@pytest.mark.parametrize("failure", ["down", "slow", "rate-limited", "malformed"])
@pytest.mark.parametrize("broken", [GITHUB, HACKERNEWS, BLUESKY, SEMANTIC_SCHOLAR])
def test_a_failing_source_fails_alone(session, apis, fetch, broken, failure):
    from papermail import trending

    _feed_all(session, apis)
    _break(apis, broken, failure)

    summaries = {source: fetch(source) for source in (GITHUB, HACKERNEWS, BLUESKY, SEMANTIC_SCHOLAR)}

    assert summaries[broken].status in (FetchStatus.FAILED, FetchStatus.PARTIAL)
    assert summaries[broken].problems
    assert not values(session, broken)
    for source, summary in summaries.items():
        if source != broken:
            assert summary.status == FetchStatus.OK, (source, summary.problems)
            assert values(session, source)
    # And the ranking goes on with what the others found.
    runs = trending.score_windows(session, config.get_settings())
    assert all(run.paper_count == 1 for run in runs)


def test_beat_fetches_each_configured_source_on_its_own_schedule(signal_settings):
    from papermail.tasks.fetch import BEAT_SCHEDULE

    assert {"fetch-github", "fetch-hackernews", "fetch-bluesky", "fetch-semanticscholar"} <= set(
        BEAT_SCHEDULE
    )
    assert BEAT_SCHEDULE["fetch-github"]["task"] == "papermail.fetch_github"
    config.use_settings(replace(signal_settings, bluesky_handle=None, bluesky_app_password=None))
    assert "fetch-bluesky" not in set(BEAT_SCHEDULE)  # off until configured


def test_the_sources_credentials_are_never_shown(tmp_path, monkeypatch):
    from tests.conftest import make_settings

    secrets = {"github_token": "ghp_secret1", "bluesky_app_password": "app-pw-2", "s2_api_key": "s2-key-3"}
    settings = make_settings(tmp_path, bluesky_handle="reader.bsky.social", **secrets)
    shown = settings.masked()
    for name, secret in secrets.items():
        assert shown[name] == "****" and secret not in repr(settings)
    assert make_settings(tmp_path).masked()["github_token"] == "(not set)"
    for variable, secret in (("GITHUB_TOKEN", "ghp_secret1"), ("S2_API_KEY", "s2-key-3")):
        monkeypatch.setenv(f"PAPERMAIL_{variable}", secret)
    listed = {s.variable: s.value for s in config.setting_sources()}
    assert listed["PAPERMAIL_GITHUB_TOKEN"] == "****" and listed["PAPERMAIL_S2_API_KEY"] == "****"


def test_bluesky_needs_both_a_handle_and_an_app_password(tmp_path):
    from tests.conftest import make_settings

    with pytest.raises(config.ConfigError, match=r"^PAPERMAIL_BLUESKY_APP_PASSWORD: must be set too"):
        make_settings(tmp_path, bluesky_handle="reader.bsky.social")


def test_the_arxiv_api_reads_the_repository_from_the_authors_comment(api_fixtures):
    from papermail.sources.arxiv_api import parse_api_feed

    recorded = (api_fixtures / "q_testing_s40_m10_96dd32eb854c.xml").read_bytes()
    linked = {r.arxiv_id: r.github_url for r in parse_api_feed(recorded).records if r.github_url}
    assert list(linked.values()) == ["https://github.com/ydecastro/super-resolution-testing"]
