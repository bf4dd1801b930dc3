"""Every category someone follows is fetched from arXiv, in feeds short enough to request."""

from __future__ import annotations

from dataclasses import replace

import pytest

from papermail import clock, signup
from papermail.db.models import Subscriber, SubscriberStatus
from papermail.sources import arxiv_rss
from papermail.sources.runner import run_fetch
from tests.sources.conftest import API_PATH, RSS_PATH, arxiv_api, serve_file


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

    token = signup.confirm_link(fetch_settings, robots).rsplit("/", 1)[-1]
    assert signup.confirm(session, fetch_settings, token).subscriber.status == SubscriberStatus.ACTIVE
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
