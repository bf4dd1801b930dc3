"""Bluesky posts linking arXiv: likes, reposts and quotes per paper, from ``app.bsky.feed.searchPosts``.

Bluesky's public AppView refuses unauthenticated searches (HTTP 403 since early 2025), so the
source needs a session: ``com.atproto.server.createSession`` with ``PAPERMAIL_BLUESKY_HANDLE`` and
an app password, once per run, at ``PAPERMAIL_BLUESKY_API_URL`` (the account's host, which
forwards the search to the AppView). Without them the source is off, and ``doctor`` says so.

One search per run for posts linking arxiv.org in the last 14 days, newest first and paged by
cursor within the run's budget: likes keep coming after a post is first seen. A post counts for
every paper its own text or link card points at (not for the posts it quotes). There are no
validators on these answers, so the requests are never conditional.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from papermail import clock
from papermail.config import Settings
from papermail.sources.http import FetchError
from papermail.sources.job import Job
from papermail.sources.links import arxiv_id_in_url
from papermail.sources.records import ParsedFeed, Problem, SignalRecord, is_count

SOURCE = "bluesky"
LIKES, REPOSTS, QUOTES = "bluesky_likes", "bluesky_reposts", "bluesky_quotes"
COUNTS = {LIKES: "likeCount", REPOSTS: "repostCount", QUOTES: "quoteCount"}
WINDOW = timedelta(days=14)
PAGE_SIZE = 100  # the most searchPosts returns


@dataclass
class PostPage:
    """One page of posts: each linked paper's summed counts, the next cursor, and problems."""

    counts: dict[str, Counter] = field(default_factory=lambda: {metric: Counter() for metric in COUNTS})
    cursor: str | None = None
    posts: int = 0
    problems: list[Problem] = field(default_factory=list)


def post_links(post: dict[str, Any]) -> set[str]:
    """The arXiv ids a post links: its text's link facets and its own link card."""
    record = post.get("record") if isinstance(post.get("record"), dict) else {}
    uris = [
        feature.get("uri")
        for facet in _list(record.get("facets"))
        for feature in _list(facet.get("features") if isinstance(facet, dict) else None)
        if isinstance(feature, dict)
    ]
    for embed in (record.get("embed"), post.get("embed")):
        if isinstance(embed, dict):
            media = embed.get("media") if isinstance(embed.get("media"), dict) else {}
            for card in (embed.get("external"), media.get("external")):
                if isinstance(card, dict):
                    uris.append(card.get("uri"))
    return {arxiv_id for uri in uris if (arxiv_id := arxiv_id_in_url(uri))}


def _list(value: object) -> list:
    return value if isinstance(value, list) else []


def parse_page(content: bytes, url: str) -> PostPage:
    """The papers a page of posts links, with their likes, reposts and quotes summed."""
    try:
        answer = json.loads(content)
        posts, cursor = answer["posts"], answer.get("cursor")
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        return PostPage(problems=[Problem.feed(url, f"not a searchPosts answer: {exc!r}")])
    if not isinstance(posts, list):
        return PostPage(problems=[Problem.feed(url, "posts is not a list")])
    page = PostPage(cursor=cursor if isinstance(cursor, str) and cursor else None, posts=len(posts))
    for post in posts:
        if not isinstance(post, dict):
            continue
        for arxiv_id in post_links(post):
            for metric, key in COUNTS.items():
                value = post.get(key)  # quoteCount is absent from older answers
                if is_count(value) and value > 0:
                    page.counts[metric][arxiv_id] += value
    return page


def search_params(since_iso: str, cursor: str | None) -> dict[str, str | int]:
    params: dict[str, str | int] = {
        "q": "arxiv.org",
        "domain": "arxiv.org",
        "sort": "latest",
        "since": since_iso,
        "limit": PAGE_SIZE,
    }
    if cursor:
        params["cursor"] = cursor
    return params


def fetch(job: Job, settings: Settings) -> None:
    """Log in, page through the window's posts linking arXiv, and snapshot each paper's sums."""
    token = _log_in(job, settings)
    if token is None:
        return
    url = f"{settings.bluesky_api_url}/app.bsky.feed.searchPosts"
    since = (clock.now() - WINDOW).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = {"Authorization": f"Bearer {token}"}
    total, cursor, page_number = PostPage(), None, 0
    while not job.over_budget(settings.bluesky_max_requests, url):
        page_number += 1
        job.report(SOURCE, f"posts linking arXiv, page {page_number}", page_number, None)
        fetched = job.download(url, search_params(since, cursor), headers=headers, conditional=False)
        if fetched is None:
            break
        page = parse_page(fetched.content, fetched.url)
        job.store(ParsedFeed(problems=page.problems))
        for metric, counts in page.counts.items():
            total.counts[metric].update(counts)
        if page.problems or not page.cursor or not page.posts:
            break
        cursor = page.cursor
    # Kept even after a failed page: counters are read as their running maximum (as on Hacker News).
    job.add_signals(
        [
            SignalRecord(a, metric, value)
            for metric, counts in total.counts.items()
            for a, value in counts.items()
        ]
    )
    job.session.commit()


def _log_in(job: Job, settings: Settings) -> str | None:
    """A session's access token; None (with the reason in the log) when Bluesky refused or failed."""
    url = f"{settings.bluesky_api_url}/com.atproto.server.createSession"
    body = {"identifier": settings.bluesky_handle, "password": settings.bluesky_app_password}
    try:
        fetched = job.request("POST", url, json=body, conditional=False)
        token = json.loads(fetched.content)["accessJwt"]
    except FetchError as exc:
        hint = (
            "; check PAPERMAIL_BLUESKY_HANDLE and PAPERMAIL_BLUESKY_APP_PASSWORD" if exc.status == 401 else ""
        )
        job.store(ParsedFeed(problems=[Problem.feed(url, f"login failed: {exc.reason}{hint}")]))
        return None
    except (ValueError, KeyError, TypeError) as exc:
        job.store(ParsedFeed(problems=[Problem.feed(url, f"login answer without a token: {exc!r}")]))
        return None
    if not isinstance(token, str) or not token:
        job.store(ParsedFeed(problems=[Problem.feed(url, "login answer without a token")]))
        return None
    job.counts.feeds += 1
    return token
