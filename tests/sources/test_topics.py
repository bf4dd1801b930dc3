"""Every category someone follows is fetched from arXiv, in feeds short enough to request."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from papermail import clock, trending
from papermail.db.models import Paper, Subscriber, SubscriberStatus
from papermail.signup import confirmations, flow
from papermail.sources import arxiv_rss
from papermail.sources.runner import run_fetch
from papermail.subscribers.preferences import parse_preferences, preference_values
from tests.conftest import shared_fixtures_dir
from tests.support.feeds import API_PATH, RSS_PATH, arxiv_api, serve_file


@pytest.fixture
def fetch_arxiv(session, fetch_settings, http_client, pacer, feed_server, api_fixtures):
    feed_server.route(API_PATH, arxiv_api(api_fixtures))

    def run():
        return run_fetch(session, fetch_settings, "arxiv", http=http_client, pacer=pacer)

    return run


def listing_paths(feed_server) -> list[str]:
    return [r.path for r in feed_server.requests if r.path.startswith(RSS_PATH)]


def test_after_a_cs_ro_subscriber_confirms_the_next_fetch_requests_cs_ro(
    session, fetch_settings, feed_server, fetch_arxiv, shared_fixtures
):
    listing = serve_file(shared_fixtures / "arxiv-rss" / "empty_rss_mock_feed.xml")
    for path in ("cs.AI", "cs.AI+cs.RO"):
        feed_server.route(RSS_PATH + path, listing)
    robots = Subscriber(
        email="robots@example.org",
        topics=["cs.RO"],
        created_at=clock.now(),
        confirmation_sent_at=clock.now(),
    )
    session.add(robots)
    session.flush()
    fetch_arxiv()
    assert listing_paths(feed_server) == [RSS_PATH + "cs.AI"]  # not confirmed yet: not fetched

    token = confirmations.confirm_link(fetch_settings, robots).rsplit("/", 1)[-1]
    assert flow.confirm(session, fetch_settings, token).subscriber.status == SubscriberStatus.ACTIVE
    session.flush()
    assert fetch_arxiv().status == "ok"
    assert listing_paths(feed_server)[-1] == RSS_PATH + "cs.AI+cs.RO"

    robots.status = SubscriberStatus.UNSUBSCRIBED
    session.flush()
    fetch_arxiv()
    assert listing_paths(feed_server)[-1] == RSS_PATH + "cs.AI"


def test_many_categories_are_split_into_several_feeds(fetch_settings):
    categories = [f"cs.{chr(65 + a)}{chr(65 + b)}" for a in range(6) for b in range(10)]  # 60 of them
    urls = arxiv_rss.rss_urls(replace(fetch_settings, arxiv_rss_url="https://rss.arxiv.org/rss/"), categories)
    assert len(urls) > 1
    assert all(
        len(url.removeprefix("https://rss.arxiv.org/rss/")) <= arxiv_rss.MAX_CATEGORY_CHARS for url in urls
    )
    assert [c for url in urls for c in url.rsplit("/", 1)[-1].split("+")] == categories


def _listing(tmp_path, category: str, arxiv_id: str) -> Path:
    """A one-paper listing of ``category`` in rss.arxiv.org's shape (the recorded cs.AI one, relabelled)."""
    recorded = (shared_fixtures_dir() / "arxiv-rss" / "arxiv_cs_ai.xml").read_text()
    items = re.findall(r"<item>.*?</item>", recorded, re.DOTALL)
    first_id = re.search(r"\d{4}\.\d{5}", items[0])[0]
    item = items[0].replace(first_id, arxiv_id)
    item = re.sub(r"<category>[^<]*</category>", f"<category>{category}</category>", item)
    path = tmp_path / f"{category}.xml"
    path.write_text(recorded.replace("".join(items), "").replace("</channel>", item + "</channel>"))
    return path


def test_an_astro_ph_ga_subscribers_category_is_fetched_and_served(
    session, fetch_settings, feed_server, fetch_arxiv, shared_fixtures, tmp_path
):
    empty = serve_file(shared_fixtures / "arxiv-rss" / "empty_rss_mock_feed.xml")
    feed_server.route(RSS_PATH + "cs.AI", empty)
    feed_server.route(
        RSS_PATH + "cs.AI+astro-ph.GA", serve_file(_listing(tmp_path, "astro-ph.GA", "2604.31415"))
    )
    preferences = parse_preferences(topics=["ASTRO-PH.ga"])  # as typed, in any case
    stars = Subscriber(
        email="stars@example.org",
        status=SubscriberStatus.ACTIVE,
        created_at=clock.now(),
        **preference_values(preferences),
    )
    session.add(stars)
    session.flush()
    assert stars.topics == ["astro-ph.GA"]
    assert fetch_arxiv().status == "ok"
    assert listing_paths(feed_server) == [RSS_PATH + "cs.AI+astro-ph.GA"]
    paper = session.scalar(sa.select(Paper).where(Paper.arxiv_id == "2604.31415"))
    assert (paper.primary_category, paper.categories) == ("astro-ph.GA", ["astro-ph.GA"])
    params = trending.TrendParams.from_settings(fetch_settings, trending.WEEKLY)
    with freeze_time(paper.published_at + timedelta(hours=5)):
        run = trending.score_papers(session, params, keep_runs=5)
    for topics in (["astro-ph.GA"], ["astro-ph"]):
        ranked = trending.ranked_papers(session, run.run_id, topics=topics)
        assert [p.paper.arxiv_id for p in ranked] == ["2604.31415"]
