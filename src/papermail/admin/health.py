"""``papermail doctor``'s checks of the data flow: sources reachable, fetches, ranking, beat.

Configuration can be perfect while every fetch fails; these checks look at what actually happened
(the fetch log, the latest ranking, beat's lease on the schedule) and each failing one says what to do.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import sqlalchemy as sa

from papermail import clock
from papermail.admin.nothing_yet import last_fetches, nothing_ranked_reason
from papermail.admin.stats import UNCATEGORISED
from papermail.config import Settings
from papermail.db import leases, session_scope
from papermail.db.bookkeeping import FetchRun, ScheduleLease
from papermail.db.models import FetchStatus
from papermail.sources import arxiv_rss
from papermail.sources.http import user_agent
from papermail.sources.runner import (
    ARXIV,
    BLUESKY,
    GITHUB,
    HACKERNEWS,
    HUGGINGFACE,
    SEMANTIC_SCHOLAR,
    SOURCES,
    source_off_reason,
)
from papermail.trending import latest_run
from papermail.trending.runs import ranked_without_category

REACH_TIMEOUT_SECONDS = 5.0
# Hugging Face is fetched hourly and the ranking follows every fetch (and an hourly safety net).
RANKING_STALE_AFTER = timedelta(hours=3)
UNCATEGORISED_WARN_SHARE = 0.05
GOOD = (FetchStatus.OK, FetchStatus.PARTIAL)


def _ago(then: datetime, now: datetime) -> str:
    minutes = int((now - then).total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min ago"
    hours = minutes // 60
    return f"{hours} h ago" if hours < 48 else f"{hours // 24} days ago"


def source_urls(settings: Settings) -> dict[str, tuple[str, str, str]]:
    """Each source's cheapest request: its source, its URL and the variable that sets its address."""
    return {
        "arXiv listing": (ARXIV, arxiv_rss.rss_url(settings), "PAPERMAIL_ARXIV_RSS_URL"),
        "arXiv API": (
            ARXIV,
            with_query(settings.arxiv_api_url, id_list="", max_results="0"),
            "PAPERMAIL_ARXIV_API_URL",
        ),
        "Hugging Face": (HUGGINGFACE, with_query(settings.hf_api_url, limit="1"), "PAPERMAIL_HF_API_URL"),
        # GitHub's /rate_limit costs none of the limit, and says how much of it is left.
        "GitHub": (GITHUB, f"{settings.github_api_url}/rate_limit", "PAPERMAIL_GITHUB_API_URL"),
        "Hacker News": (
            HACKERNEWS,
            with_query(f"{settings.hn_api_url}/search", query="arxiv.org", hitsPerPage="0"),
            "PAPERMAIL_HN_API_URL",
        ),
        "Bluesky": (BLUESKY, f"{settings.bluesky_api_url}/_health", "PAPERMAIL_BLUESKY_API_URL"),
        "Semantic Scholar": (
            SEMANTIC_SCHOLAR,
            with_query(f"{settings.s2_api_url}/graph/v1/paper/ARXIV:1706.03762", fields="title"),
            "PAPERMAIL_S2_API_URL",
        ),
    }


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to the query it may already have (``?key=…`` stays)."""
    parts = urlsplit(url)
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), *params.items()])
    return urlunsplit(parts._replace(query=query))


def check_sources(settings: Settings) -> list[tuple[str, str, str]]:
    """(name, status, detail) per source: one GET each, short timeout, no retries."""
    results = []
    headers = {"User-Agent": user_agent(settings)}
    with httpx.Client(timeout=REACH_TIMEOUT_SECONDS, headers=headers, follow_redirects=True) as client:
        for name, (source, url, variable) in source_urls(settings).items():
            if off := source_off_reason(settings, source):
                results.append((f"source {name}", "ok", off))
                continue
            started = time.monotonic()
            try:
                response = client.get(url)
            except httpx.HTTPError as exc:
                reason = str(exc) or type(exc).__name__
                results.append(
                    (f"source {name}", "fail", f"{url}: {reason}; check the network, or set {variable}")
                )
                continue
            took = time.monotonic() - started
            if response.status_code >= 500:
                detail = f"{url}: HTTP {response.status_code}; the source is down, fetches retry later"
                results.append((f"source {name}", "warn", detail))
            else:
                detail = f"{url}: answered HTTP {response.status_code} in {took:.1f} s"
                results.append((f"source {name}", "ok", detail))
    return results


def check_fetches(settings: Settings) -> list[tuple[str, str, str]]:
    """The last fetch of each source: when, and its error when it failed."""
    now = clock.now()
    with session_scope(settings) as session:
        fetches = {fetch.source: fetch for fetch in last_fetches(session)}
        good = dict(
            session.execute(
                sa.select(FetchRun.source, sa.func.max(FetchRun.started_at))
                .where(FetchRun.status.in_(GOOD))
                .group_by(FetchRun.source)
            ).all()
        )
    results = []
    for source in SOURCES:
        if source_off_reason(settings, source):
            continue  # its "source" line says it is off, and how to turn it on
        fetch = fetches.get(source)
        if fetch is None:
            results.append((f"fetch {source}", "warn", "never fetched: run `papermail fetch`"))
        elif fetch.status == FetchStatus.FAILED:
            since = f"; last good one {_ago(good[source], now)}" if source in good else "; never succeeded"
            detail = f"failed {_ago(fetch.started_at, now)}: {fetch.error}{since}; see `papermail fetch log`"
            results.append((f"fetch {source}", "fail", detail))
        else:
            error = f" ({fetch.error})" if fetch.error else ""
            results.append((f"fetch {source}", "ok", f"{fetch.status} {_ago(fetch.started_at, now)}{error}"))
    return results


def check_ranking(settings: Settings) -> tuple[str, str, str]:
    """The latest ranking exists, holds papers, and is recent."""
    now = clock.now()
    with session_scope(settings) as session:
        run = latest_run(session)
        if run is None or not run.paper_count:
            return ("ranking", "warn", nothing_ranked_reason(session, run) or "no ranking yet")
        age = now - run.as_of
        detail = f"run {run.id} of {_ago(run.as_of, now)} ranks {run.paper_count:,} papers"
    if age > RANKING_STALE_AFTER:
        return ("ranking", "warn", f"{detail}: stale; is a worker running? `papermail score` ranks now")
    return ("ranking", "ok", detail)


def check_categories(settings: Settings) -> list[tuple[str, str, str]]:
    """The latest ranking's papers have their arXiv categories, without which no topic matches them.

    No check before the first ranking: the ranking check already says what to do then.
    """
    with session_scope(settings) as session:
        run = latest_run(session)
        if run is None or not run.paper_count:
            return []
        missing = ranked_without_category(session, run.id)
    if not missing:
        return [("categories", "ok", f"all {run.paper_count:,} ranked papers have their arXiv category")]
    detail = (
        f"{missing:,} of {run.paper_count:,} ranked papers have no arXiv category yet: {UNCATEGORISED} "
        "(`papermail fetch log` says why not)"
    )
    # A few are normal: the API's index lags Hugging Face's listings by hours.
    return [("categories", "warn" if missing > run.paper_count * UNCATEGORISED_WARN_SHARE else "ok", detail)]


def check_beat(settings: Settings) -> tuple[str, str, str]:
    """A beat holds the schedule: it renews its lease in the database while it ticks, on any machine."""
    now = clock.now()
    with session_scope(settings) as session:
        lease = session.scalar(sa.select(ScheduleLease).where(ScheduleLease.name == leases.BEAT))
    if lease is None:
        return (
            "beat",
            "warn",
            "no beat holds the schedule: run exactly one `papermail beat` (or `papermail up`)",
        )
    if lease.expires_at < now:
        return (
            "beat",
            "fail",
            f"beat {lease.holder} stopped renewing its hold {_ago(lease.expires_at, now)}: "
            "start exactly one `papermail beat`",
        )
    return ("beat", "ok", f"{lease.holder} holds the schedule (renewed while it ticks)")
