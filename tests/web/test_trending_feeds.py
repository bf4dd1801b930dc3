"""/trending, /trending.json and /trending.xml on both databases: content, paging, validators, errors."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime, timedelta

import feedparser
import jsonschema
import pytest
import sqlalchemy as sa
from flask import Flask
from freezegun import freeze_time

from papermail.db.models import Digest, Paper, TrendScore
from papermail.signup.limits import DatabaseRateLimiter
from papermail.web import create_app
from tests.conftest import REPO_ROOT
from tests.support.web import add_run

SCHEMA = json.loads((REPO_ROOT / "docs" / "trending.schema.json").read_text())
# A Wednesday: the run and "an hour later" share ISO week 2026-W49.
WEDNESDAY = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
FORMATS = ["/trending", "/trending.json", "/trending.xml"]


@pytest.fixture
def app(web_settings, sessions) -> Flask:
    """The app with no per-process delay in noticing a new scoring run."""
    return create_app(
        web_settings,
        {
            "TESTING": True,
            "SESSION_FACTORY": sessions,
            "RATE_LIMITER": DatabaseRateLimiter(),
            "PREVIEW_TTL": 0,
        },
    )


@pytest.fixture
def frozen():
    with freeze_time(WEDNESDAY) as frozen_time:
        yield frozen_time


def titles(count: int, prefix: str = "Paper") -> list[str]:
    return [f"{prefix} {n}" for n in range(1, count + 1)]


def test_the_page_shows_each_paper_with_rank_links_and_evidence(client, session, frozen):
    run = add_run(session, titles(30))
    response = client.get("/trending")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert page.count('class="paper"') == 25
    assert "Paper 1<" in page and "Paper 25<" in page and "Paper 26<" not in page
    assert "+49 upvotes / 24h" in page  # the evidence line
    assert "A. Lovelace, C. Babbage, G. Hopper et al." in page
    assert "cs.LG · Machine Learning" in page
    assert 'href="https://arxiv.org/abs/' in page and 'href="https://arxiv.org/pdf/' in page
    assert "Page 1 of 2" in page and 'rel="next"' in page
    second = client.get("/trending?page=2").get_data(as_text=True)
    assert second.count('class="paper"') == 5 and "Paper 26<" in second and 'rel="prev"' in second
    assert client.get("/trending?page=3").status_code == 404
    assert client.get("/trending.json").get_json()["run"]["id"] == run.id


def test_the_home_page_links_to_the_whole_list(client, session, frozen):
    add_run(session, titles(6))
    assert 'href="/trending"' in client.get("/").get_data(as_text=True)


def test_topics_filter_and_rank_within_the_selection(client, session, frozen):
    run = add_run(session, titles(3))
    vision = session.get(Paper, session.scalars(run_papers(run.id)).all()[2])
    vision.categories = ["cs.CV"]
    session.flush()
    data = client.get("/trending.json?topic=cs.CV").get_json()
    assert [(p["rank"], p["run_rank"], p["title"]) for p in data["papers"]] == [(1, 3, "Paper 3")]
    both = client.get("/trending.json?topic=cs.CV&topic=cs.LG").get_json()
    assert [p["title"] for p in both["papers"]] == ["Paper 1", "Paper 2", "Paper 3"]
    assert both["topics"] == ["cs.CV", "cs.LG"]
    typed = client.get("/trending.json?topic=CS.cv&topic=cs.lg").get_json()  # any case
    assert typed["topics"] == ["cs.CV", "cs.LG"] and typed["papers"] == both["papers"]


def run_papers(run_id: int) -> sa.Select:
    return sa.select(TrendScore.paper_id).where(TrendScore.run_id == run_id).order_by(TrendScore.rank)


def test_json_follows_the_documented_schema(client, session, frozen):
    run = add_run(session, titles(27))
    data = client.get("/trending.json?window=7d").get_json()
    jsonschema.validate(data, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert data["version"] == 1 and data["run"]["id"] == run.id and data["period"] == "2026-W49"
    assert (data["total"], data["pages"], len(data["papers"])) == (27, 2, 25)
    assert data["next"] == "https://papermail.test/trending.json?window=7d&page=2"
    last = client.get("/trending.json?page=2").get_json()
    jsonschema.validate(last, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert [p["rank"] for p in last["papers"]] == [26, 27] and last["next"] is None


def test_the_atom_feed_parses_cleanly_and_keeps_entry_ids_within_the_period(client, session, frozen):
    add_run(session, titles(3))
    first = feedparser.parse(client.get("/trending.xml").data)
    assert not first.bozo, first.get("bozo_exception")
    assert [entry.title for entry in first.entries] == ["Paper 1", "Paper 2", "Paper 3"]
    assert first.entries[0].link.startswith("https://arxiv.org/abs/")
    assert "+49 upvotes / 24h" in first.entries[0].summary
    assert first.feed.links[0].href.startswith("https://papermail.test/trending.xml")
    assert first.entries[0].id.startswith("tag:papermail.test,2026:trending/7d/2026-W49/2601.")
    assert [tag.term for tag in first.entries[0].tags] == ["cs.LG"]


def test_entry_ids_depend_on_paper_and_period_only(client, session, frozen):
    run = add_run(session, titles(2))
    paper_ids = session.scalars(run_papers(run.id)).all()
    ids = [entry.id for entry in feedparser.parse(client.get("/trending.xml").data).entries]
    frozen.tick(timedelta(hours=2))
    newer = add_run(session, [])
    # The newer run ranks the same two papers the other way round.
    for rank, paper_id in enumerate(reversed(paper_ids), start=1):
        session.add(TrendScore(run_id=newer.id, paper_id=paper_id, rank=rank, score=10 - rank, evidence="x"))
    session.flush()
    reordered = [entry.id for entry in feedparser.parse(client.get("/trending.xml").data).entries]
    assert reordered == list(reversed(ids))
    frozen.tick(timedelta(days=7))
    next_week = add_run(session, [])
    for rank, paper_id in enumerate(paper_ids, start=1):
        session.add(
            TrendScore(run_id=next_week.id, paper_id=paper_id, rank=rank, score=10 - rank, evidence="x")
        )
    session.flush()
    following = [entry.id for entry in feedparser.parse(client.get("/trending.xml").data).entries]
    assert set(following).isdisjoint(ids), "a new week is a new period: new entries"


@pytest.mark.parametrize("path", FORMATS)
def test_conditional_requests_get_304_until_a_new_run(client, session, frozen, path):
    add_run(session, titles(3))
    first = client.get(path)
    etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert first.status_code == 200 and first.headers["Cache-Control"] == "public, max-age=60"
    assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(path, headers={"If-Modified-Since": last_modified}).status_code == 304
    frozen.tick(timedelta(hours=1))
    add_run(session, titles(2, prefix="Newer"))
    fresh = client.get(path, headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["ETag"] != etag
    assert b"Newer 1" in fresh.data
    assert client.get(path, headers={"If-Modified-Since": last_modified}).status_code == 200


@pytest.mark.parametrize("path", FORMATS)
def test_a_weak_etag_matches_and_a_star_matches_only_a_page_that_exists(client, session, frozen, path):
    add_run(session, titles(3))
    etag = client.get(path).headers["ETag"]
    assert client.get(path, headers={"If-None-Match": f"W/{etag}"}).status_code == 304
    assert client.get(path, headers={"If-None-Match": "*"}).status_code == 304
    missing = path + ("&" if "?" in path else "?") + "page=99"
    assert client.get(missing, headers={"If-None-Match": "*"}).status_code == 404


def test_a_past_period_shows_its_pinned_ranking_after_newer_runs(client, session, frozen):
    pinned = add_run(session, titles(4, prefix="Pinned"))
    session.add(Digest(period_key="2026-W49", scoring_run_id=pinned.id, created_at=WEDNESDAY))
    session.flush()
    expected = client.get("/trending.json?period=2026-W49").get_json()
    frozen.tick(timedelta(hours=3))
    add_run(session, titles(4, prefix="Later"))
    live = client.get("/trending.json").get_json()
    assert live["papers"][0]["title"] == "Later 1"
    past = client.get("/trending.json?period=2026-W49").get_json()
    assert past == expected
    assert [p["title"] for p in past["papers"]] == ["Pinned 1", "Pinned 2", "Pinned 3", "Pinned 4"]
    assert (past["live"], past["period"], past["run"]["id"]) == (False, "2026-W49", pinned.id)
    page = client.get("/trending?period=2026-W49").get_data(as_text=True)
    assert "Pinned 1<" in page and "Later 1<" not in page and "See the current ranking" in page
    assert client.get("/trending?period=2026-W40").status_code == 404


@pytest.mark.parametrize("path", FORMATS)
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("topic=cs.NOPE", "cs.NOPE"),
        ("topic=<script>", "is not an arXiv category"),
        ("period=2026-W60", "malformed period"),
        ("period=yesterday", "malformed period"),
        ("period=2026-13-01", "malformed period"),
        ("window=1y", "unknown window"),
        ("window=24h&period=2026-W49", "ranked over the 7d window"),
        ("page=0", "page must be"),
        ("page=x", "page must be"),
    ],
)
def test_bad_queries_get_a_400_that_says_why(client, session, path, query, message):
    add_run(session, titles(1))
    response = client.get(f"{path}?{query}")
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert message.lower() in html.unescape(text).lower()
    if path == "/trending":  # JSON and text/plain (nosniff) carry it inert; HTML must escape it
        assert "<script>" not in text


@pytest.mark.parametrize("path", FORMATS)
def test_before_the_first_run_visitors_get_a_plain_answer_without_operator_commands(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-cache"
    text = response.get_data(as_text=True)
    assert "papermail fetch" not in text and "papermail score" not in text and "`" not in text
    if path.endswith(".json"):
        body = response.get_json()
        jsonschema.validate(body, SCHEMA)
        assert body["papers"] == [] and body["run"] is None and body["total"] == 0
        assert body["reason"].startswith("The ranking is on its way")
    elif path.endswith(".xml"):
        feed = feedparser.parse(response.data)
        assert not feed.bozo and feed.entries == [] and feed.feed.title == "papermail: Trending this week"
        assert feed.feed.subtitle.startswith("The ranking is on its way")
    else:
        assert "The ranking is on its way" in text and "<h1>Trending this week</h1>" in text


def test_no_subscriber_data_in_any_format(client, session, people, frozen):
    subscriber = people.add("secret.reader@example.org", topics=["cs.LG"])
    run = add_run(session, titles(2))
    session.add(Digest(period_key="2026-W49", scoring_run_id=run.id, created_at=WEDNESDAY))
    session.flush()
    for path in FORMATS:
        for query in ("", "?period=2026-W49", "?topic=cs.LG"):
            response = client.get(path + query)
            assert response.status_code == 200
            assert b"secret.reader" not in response.data and b"example.org" not in response.data
            assert "Set-Cookie" not in response.headers
    assert subscriber.id


def test_each_window_shows_its_own_runs_and_a_day_reads_the_daily_run(client, session, frozen):
    weekly = add_run(session, titles(2, prefix="Weekly"))
    daily = add_run(session, titles(2, prefix="Daily"))
    daily.window = "24h"
    session.add(Digest(period_key="2026-12-02", scoring_run_id=daily.id, created_at=WEDNESDAY))
    session.flush()
    assert client.get("/trending.json").get_json()["papers"][0]["title"] == "Weekly 1"
    day = client.get("/trending.json?window=24h").get_json()
    assert (day["window"], day["period"], day["run"]["id"]) == ("24h", "2026-12-02", daily.id)
    assert day["papers"][0]["title"] == "Daily 1"
    assert client.get("/trending.json?period=2026-12-02").get_json()["run"]["id"] == daily.id
    page = client.get("/trending?window=24h").get_data(as_text=True)
    assert "Trending today" in page and 'aria-current="page">Last 24 hours' in page
    assert weekly.window == "7d"


def test_a_hot_page_costs_no_query_until_the_ttl_passes(web_settings, sessions, session, frozen):
    app = create_app(
        web_settings,
        {"TESTING": True, "SESSION_FACTORY": sessions, "RATE_LIMITER": DatabaseRateLimiter()},
    )
    client = app.test_client()
    add_run(session, titles(3))
    for path in FORMATS:
        assert client.get(path).status_code == 200
    statements: list[str] = []
    sa.event.listen(session.bind, "before_cursor_execute", lambda *args: statements.append(args[2]))
    for path in FORMATS:
        assert client.get(path).status_code == 200
        assert client.get(path + "?page=1").status_code == 200
    assert statements == []
    client.get("/trending?topic=cs.CV")  # a query not seen yet reads its page (the run is known)
    selects = [sql for sql in statements if sql.startswith("SELECT")]
    assert len(selects) == 2, statements  # the count and the page


def test_each_sources_numbers_and_the_tldr_are_in_the_json_and_on_the_page(client, session, frozen):
    from papermail.db.models import SignalSnapshot

    run = add_run(session, titles(2))
    paper = session.get(Paper, session.scalars(run_papers(run.id)).first())
    paper.tldr = "A robot learns to grasp from three demonstrations."
    for source, metric, value, hours_ago in (
        ("github", "github_stars", 300, 30),
        ("github", "github_stars", 340, 1),
        ("hackernews", "hn_points", 250, 2),
        ("bluesky", "bluesky_likes", 57, 2),
        ("semanticscholar", "citations", 0, 2),  # zeros are left out
        ("hackernews", "hn_points", 999, -1),  # after the run: not in it
    ):
        at = WEDNESDAY - timedelta(hours=hours_ago)
        session.add(
            SignalSnapshot(paper_id=paper.id, source=source, metric=metric, value=value, observed_at=at)
        )
    session.flush()
    data = client.get("/trending.json").get_json()
    jsonschema.validate(data, SCHEMA, format_checker=jsonschema.FormatChecker())
    first, second = data["papers"]
    assert first["signals"] == {"github_stars": 340, "hn_points": 250, "bluesky_likes": 57}
    assert first["tldr"] == paper.tldr
    assert first["tldr_url"] == f"https://www.semanticscholar.org/arxiv/{paper.arxiv_id}"
    assert (second["signals"], second["tldr"], second["tldr_url"]) == ({}, None, None)
    page = client.get("/trending").get_data(as_text=True)
    assert f"<strong>TL;DR</strong> {paper.tldr}" in page
