"""The arXiv source: each fetch reads the listings of the followed categories; a backfill pages the API."""

from __future__ import annotations

from datetime import date

from papermail.config import Settings
from papermail.sources import arxiv_rss
from papermail.sources.arxiv_api import backfill_query
from papermail.sources.job import Job, download_and_store

SOURCE = "arxiv"


def fetch(job: Job, settings: Settings, day: date | None) -> None:
    """Today's listings, completed from the API; with ``day``, that day's papers from the API."""
    # Every category someone follows is fetched, not only the configured ones.
    categories = arxiv_rss.categories_to_fetch(job.session, settings)
    if day:
        _backfill(job, categories, day)
        return
    # Replacements of papers we have never seen lack their first version's date: completed from
    # the API, once for all the feeds.
    urls, incomplete = arxiv_rss.rss_urls(settings, categories), []
    for number, url in enumerate(urls, start=1):
        what = "the listing" if len(urls) == 1 else f"the listing ({number} of {len(urls)})"
        incomplete += download_and_store(job, what, url, None, arxiv_rss.parse_rss).incomplete
    job.complete_from_api(list(dict.fromkeys(incomplete)))


def _backfill(job: Job, categories: list[str], day: date) -> None:
    query = backfill_query(categories, day)
    extra = {"sortBy": "submittedDate", "sortOrder": "ascending"}
    for page_number, page in enumerate(job.api.search(query, extra=extra), start=1):
        job.report(job.run.source, f"backfilling {day}: page {page_number}", page_number, None)
        job.store(page)
