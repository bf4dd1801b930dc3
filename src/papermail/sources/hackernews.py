"""Hacker News stories linking arXiv, through the Algolia search API: points and comments per paper.

One query per run, paged to its last page within the run's budget::

    search_by_date?query=arxiv.org&restrictSearchableAttributes=url&tags=story
        &numericFilters=created_at_i>T&hitsPerPage=100&page=N

``T`` is 14 days back, not the last run: a story's points keep growing for days, and a query for
"since the last run" would freeze them at first sight. Abs, pdf, html and versioned URLs all name
their paper; a paper's points and comments are the sums over its stories. Algolia sends no
validators, so these requests are never conditional.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from papermail import clock
from papermail.config import Settings
from papermail.sources.job import Job
from papermail.sources.links import arxiv_id_in_url
from papermail.sources.records import ParsedFeed, Problem, SignalRecord, is_count

SOURCE, POINTS, COMMENTS = "hackernews", "hn_points", "hn_comments"
WINDOW = timedelta(days=14)
HITS_PER_PAGE = 100


def search_params(since_epoch: int, page: int) -> dict[str, str | int]:
    """One page of the stories linking arxiv.org created after ``since_epoch`` (Unix seconds)."""
    return {
        "query": "arxiv.org",
        "restrictSearchableAttributes": "url",
        "tags": "story",
        "numericFilters": f"created_at_i>{since_epoch}",
        "hitsPerPage": HITS_PER_PAGE,
        "page": page,
    }


@dataclass
class StoryPage:
    """One page of search results: the points and comments of each linked paper, and the paging."""

    points: Counter = field(default_factory=Counter)
    comments: Counter = field(default_factory=Counter)
    pages: int = 0  # nbPages: how many pages the query has
    problems: list[Problem] = field(default_factory=list)


def parse_page(content: bytes, url: str) -> StoryPage:
    """A page's stories, summed per paper; a story without an arXiv paper URL is skipped."""
    try:
        answer = json.loads(content)
        hits, pages = answer["hits"], answer.get("nbPages", 0)
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        return StoryPage(problems=[Problem.feed(url, f"not an Algolia search answer: {exc!r}")])
    if not isinstance(hits, list):
        return StoryPage(problems=[Problem.feed(url, "hits is not a list")])
    page = StoryPage(pages=pages if isinstance(pages, int) else 0)
    for hit in hits:
        arxiv_id = arxiv_id_in_url(hit.get("url")) if isinstance(hit, dict) else None
        if arxiv_id is None:
            continue
        page.points[arxiv_id] += _count(hit.get("points"))
        page.comments[arxiv_id] += _count(hit.get("num_comments"))
    return page


def _count(value: object) -> int:
    return value if is_count(value) and value > 0 else 0


def fetch(job: Job, settings: Settings) -> None:
    """Page through the window's stories and snapshot each paper's summed points and comments."""
    url = f"{settings.hn_api_url}/search_by_date"
    since = int((clock.now() - WINDOW).timestamp())
    total, page_number = StoryPage(), 0
    while not job.over_budget(settings.hn_max_requests, url):
        job.report(SOURCE, f"stories linking arXiv, page {page_number + 1}", page_number, total.pages or None)
        fetched = job.download(url, search_params(since, page_number), conditional=False)
        if fetched is None:
            break
        page = parse_page(fetched.content, fetched.url)
        job.store(ParsedFeed(problems=page.problems))
        if page.problems:
            break
        total.points.update(page.points)
        total.comments.update(page.comments)
        total.pages = page.pages
        page_number += 1
        if page_number >= page.pages:
            break
    # What the pages so far found is kept even when a later one failed: counters are read as their
    # running maximum, so a paper whose other story was on a lost page never loses points.
    signals = [SignalRecord(arxiv_id, POINTS, points) for arxiv_id, points in total.points.items()]
    signals += [SignalRecord(arxiv_id, COMMENTS, comments) for arxiv_id, comments in total.comments.items()]
    job.add_signals(signals)
    job.session.commit()
