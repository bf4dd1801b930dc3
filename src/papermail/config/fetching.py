"""Fetching settings: arXiv and Hugging Face, the community signals, politeness and schedules."""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parseaddr

from papermail.config import parsers as parse
from papermail.config.reader import ConfigError, Reader, secret

# Without a token GitHub allows 60 requests an hour per address: an hourly run stays under it.
GITHUB_ANONYMOUS_REQUESTS_PER_HOUR = 60


@dataclass(frozen=True, repr=False)
class FetchSettings:
    """Where papers and their signals come from, how politely, and when beat fetches them."""

    arxiv_categories: tuple[str, ...]
    arxiv_rss_url: str
    arxiv_api_url: str
    hf_api_url: str
    http_timeout_seconds: float
    # -- politeness towards arXiv and Hugging Face, and when beat fetches --
    fetch_contact: str
    fetch_retries: int
    fetch_backoff_seconds: float
    arxiv_delay_seconds: float
    arxiv_fetch_cron: str
    hf_fetch_cron: str
    backfill_days: int  # on start with stale data: arXiv days fetched in the background
    hf_refresh_days: int
    hf_refresh_max_requests: int
    # -- community signals: GitHub stars, Hacker News, Bluesky, Semantic Scholar (README: sources) --
    github_api_url: str
    github_token: str | None = secret()
    github_fetch_cron: str
    github_max_requests: int
    hn_api_url: str
    hn_fetch_cron: str
    hn_max_requests: int
    bluesky_api_url: str
    bluesky_handle: str | None
    bluesky_app_password: str | None = secret()
    bluesky_fetch_cron: str
    bluesky_max_requests: int
    s2_api_url: str
    s2_api_key: str | None = secret()
    s2_fetch_cron: str
    s2_max_requests: int


def read_fetching(read: Reader, mail_from: str) -> dict[str, object]:
    """The fetch settings; the contact the sources are given defaults to ``mail_from``'s address."""
    return {
        "arxiv_categories": read.get("ARXIV_CATEGORIES", parse.categories, "cs.AI,cs.CL,cs.CV,cs.LG"),
        "arxiv_rss_url": read.get("ARXIV_RSS_URL", parse.http_url, "https://rss.arxiv.org/rss/"),
        "arxiv_api_url": read.get("ARXIV_API_URL", parse.http_url, "https://export.arxiv.org/api/query"),
        "hf_api_url": read.get("HF_API_URL", parse.http_url, "https://huggingface.co/api/daily_papers"),
        "http_timeout_seconds": read.get("HTTP_TIMEOUT", parse.positive_float, "20"),
        "fetch_contact": read.get("FETCH_CONTACT", parse.address, parseaddr(mail_from)[1]),
        "fetch_retries": read.get("FETCH_RETRIES", parse.non_negative_int, "3"),
        "fetch_backoff_seconds": read.get("FETCH_BACKOFF", parse.positive_float, "2"),
        "arxiv_delay_seconds": read.get("ARXIV_API_DELAY", parse.non_negative_float, "3"),
        # arXiv rebuilds its RSS at midnight US Eastern (04:00/05:00 UTC) on weekdays; the second
        # run is a free catch-up (conditional GET, idempotent upserts) if the first one failed.
        "arxiv_fetch_cron": read.get("ARXIV_FETCH_CRON", parse.cron, "30 5,9 * * mon-fri"),
        "hf_fetch_cron": read.get("HF_FETCH_CRON", parse.cron, "15 * * * *"),
        "backfill_days": read.get("BACKFILL_DAYS", parse.non_negative_int, "7"),
        # Upvotes keep growing for one to two weeks after a paper is featured: every scheduled
        # fetch re-reads the listings of that many days, within a request budget.
        "hf_refresh_days": read.get("HF_REFRESH_DAYS", parse.non_negative_int, "14"),
        "hf_refresh_max_requests": read.get("HF_REFRESH_MAX_REQUESTS", parse.non_negative_int, "40"),
        **_read_signals(read),
    }


def _read_signals(read: Reader) -> dict[str, object]:
    """The community sources' addresses, credentials, schedules and request budgets per run."""
    github_token = read.get("GITHUB_TOKEN", parse.optional_text, "")
    github_max = read.get("GITHUB_MAX_REQUESTS", parse.non_negative_int, "1000" if github_token else "50")
    if not github_token and github_max > GITHUB_ANONYMOUS_REQUESTS_PER_HOUR:
        raise ConfigError(
            "GITHUB_MAX_REQUESTS",
            f"must be at most {GITHUB_ANONYMOUS_REQUESTS_PER_HOUR} without PAPERMAIL_GITHUB_TOKEN "
            "(GitHub's hourly limit for anonymous requests)",
        )
    handle = read.get("BLUESKY_HANDLE", parse.optional_text, "")
    password = read.get("BLUESKY_APP_PASSWORD", parse.optional_text, "")
    if bool(handle) != bool(password):
        missing = "BLUESKY_APP_PASSWORD" if handle else "BLUESKY_HANDLE"
        raise ConfigError(missing, "must be set too: Bluesky's search needs a handle and an app password")
    return {
        "github_api_url": read.get("GITHUB_API_URL", parse.base_url, "https://api.github.com"),
        "github_token": github_token,
        "github_fetch_cron": read.get("GITHUB_FETCH_CRON", parse.cron, "40 * * * *"),
        "github_max_requests": github_max,
        "hn_api_url": read.get("HN_API_URL", parse.base_url, "https://hn.algolia.com/api/v1"),
        "hn_fetch_cron": read.get("HN_FETCH_CRON", parse.cron, "25 */3 * * *"),
        "hn_max_requests": read.get("HN_MAX_REQUESTS", parse.non_negative_int, "20"),
        "bluesky_api_url": read.get("BLUESKY_API_URL", parse.base_url, "https://bsky.social/xrpc"),
        "bluesky_handle": handle,
        "bluesky_app_password": password,
        "bluesky_fetch_cron": read.get("BLUESKY_FETCH_CRON", parse.cron, "35 */3 * * *"),
        "bluesky_max_requests": read.get("BLUESKY_MAX_REQUESTS", parse.non_negative_int, "30"),
        "s2_api_url": read.get("S2_API_URL", parse.base_url, "https://api.semanticscholar.org"),
        "s2_api_key": read.get("S2_API_KEY", parse.optional_text, ""),
        "s2_fetch_cron": read.get("S2_FETCH_CRON", parse.cron, "50 6 * * *"),
        "s2_max_requests": read.get("S2_MAX_REQUESTS", parse.non_negative_int, "120"),
    }
