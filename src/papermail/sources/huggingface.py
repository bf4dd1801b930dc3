"""Hugging Face daily papers (``/api/daily_papers``): popularity signals, plus papers not yet seen.

Both schemas are read. 2026: ``paper.upvotes``, top-level ``numComments``, sometimes
``paper.githubRepo``/``paper.githubStars``, ``paper.submittedOnDailyAt``. 2024: no
``submittedOnDailyAt``, authors carry ``user``/``status``, and titles can be hard-wrapped.

Each fetch reads the newest listing, then re-reads the listings of the last few days page by page
(their papers' upvotes keep growing), within a budget of requests per run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from papermail import clock
from papermail.arxiv_ids import parse_arxiv_id
from papermail.config import Settings
from papermail.sources.job import Job, download_and_store
from papermail.sources.normalise import clean_authors, normalise_text, safe_http_url
from papermail.sources.records import PaperRecord, ParsedFeed, Problem, SignalRecord, is_count

SOURCE = "huggingface"
PAGE_LIMIT = 100  # the most the endpoint returns per call
# Pages in a row that failed (after their retries) before the refresh gives up for this run: the
# site is down, and the next scheduled fetch tries again.
REFRESH_FAILURES_IN_A_ROW = 3
UPVOTES, COMMENTS, GITHUB_STARS = "upvotes", "comments", "github_stars"


def daily_papers_params(day: date | None, page: int = 0) -> dict[str, str | int]:
    """Query parameters: the newest papers, or one page (``p``, from 0) of one day's."""
    params: dict[str, str | int] = {"limit": PAGE_LIMIT}
    if day:
        params["date"] = day.isoformat()
    if page:
        params["p"] = page
    return params


def refresh_days(today: date, days: int) -> list[date]:
    """The days whose featured papers are still gathering votes, newest first."""
    return [today - timedelta(days=n) for n in range(days)]


def parse_daily_papers(content: bytes, url: str | None = None) -> ParsedFeed:
    """Records and signals from one answer; items without an arXiv id or title become problems."""
    try:
        items = json.loads(content)
    except (ValueError, RecursionError) as exc:
        return ParsedFeed(problems=[Problem.feed(url, f"not JSON: {exc}")])
    return daily_papers_records(items, url)


def daily_papers_records(items: object, url: str | None = None) -> ParsedFeed:
    """The normalising half of :func:`parse_daily_papers`, for already decoded JSON."""
    if isinstance(items, dict) and "error" in items:
        return ParsedFeed(problems=[Problem.feed(url, f"Hugging Face error: {items['error']}")])
    if not isinstance(items, list):
        reason = f"expected a list of papers, got {type(items).__name__}"
        return ParsedFeed(problems=[Problem.feed(url, reason)])
    parsed = ParsedFeed(entries_seen=len(items))
    for index, item in enumerate(items):
        try:
            record, signals = _record(item)
        except ValueError as exc:
            parsed.problems.append(Problem.entry(url, _item_ref(item, index), str(exc)))
            continue
        parsed.records.append(record)
        parsed.signals.extend(signals)
    return parsed


def _record(item: object) -> tuple[PaperRecord, list[SignalRecord]]:
    paper = item.get("paper") if isinstance(item, dict) else None
    if not isinstance(paper, dict):
        raise ValueError("no paper object")
    ident = parse_arxiv_id(_text(paper.get("id")))
    title = normalise_text(_text(paper.get("title")) or _text(item.get("title")))
    if not title:
        raise ValueError("no title")
    authors = clean_authors(_author_name(author) for author in paper.get("authors") or [])
    record = PaperRecord(
        arxiv_id=ident.id,
        version=None,
        title=title,
        abstract=normalise_text(_text(paper.get("summary")) or _text(item.get("summary"))),
        authors=tuple(authors),
        published_at=_timestamp(paper.get("publishedAt")),
        github_url=safe_http_url(paper.get("githubRepo")),
        on_huggingface=True,
        from_arxiv=False,
    )
    metrics = {
        UPVOTES: paper.get("upvotes"),
        COMMENTS: item.get("numComments"),
        GITHUB_STARS: paper.get("githubStars"),
    }
    signals = [SignalRecord(ident.id, metric, value) for metric, value in metrics.items() if is_count(value)]
    return record, signals


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _author_name(author: object) -> str:
    if not isinstance(author, dict):
        return ""
    user = author.get("user") if isinstance(author.get("user"), dict) else {}
    return _text(author.get("name")) or _text(user.get("fullname"))


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def _item_ref(item: object, index: int) -> str:
    if isinstance(item, dict) and isinstance(item.get("paper"), dict):
        ref = _text(item["paper"].get("id")) or _text(item["paper"].get("title"))
        if ref:
            return normalise_text(ref)[:200]
    return f"item #{index + 1}"


def fetch(job: Job, settings: Settings, day: date | None) -> None:
    """The newest listing and a refresh of the last days' ones; with ``day``, that day's listing."""
    # Papers first seen on Hugging Face get arXiv's own metadata (categories above all) from the API.
    if day:
        incomplete = _page_through_day(job, settings, day, _Budget(None)).incomplete
    else:
        params = daily_papers_params(None)
        incomplete = download_and_store(
            job, "daily papers", settings.hf_api_url, params, parse_daily_papers
        ).incomplete
        incomplete += _refresh_recent_days(job, settings)
    job.complete_from_api(list(dict.fromkeys(incomplete)))


@dataclass
class _Budget:
    """Requests a refresh may still make (None: no limit)."""

    left: int | None

    def take(self) -> bool:
        if self.left is None:
            return True
        if self.left <= 0:
            return False
        self.left -= 1
        return True


@dataclass
class _Paged:
    """What paging through one day's listing did."""

    incomplete: list[str] = field(default_factory=list)
    failures_in_a_row: int = 0
    out_of_budget: bool = False


def _refresh_recent_days(job: Job, settings: Settings) -> list[str]:
    """Re-read the listings of the last ``hf_refresh_days`` days, so their papers' counters stay fresh.

    Upvotes keep growing for a week or two after a paper is featured, long after it left the newest
    listing. Newest day first, within ``hf_refresh_max_requests`` requests per run.
    """
    budget, incomplete = _Budget(settings.hf_refresh_max_requests), []
    failures_in_a_row = 0
    for day in refresh_days(clock.now().date(), settings.hf_refresh_days):
        paged = _page_through_day(job, settings, day, budget, failures_in_a_row)
        incomplete += paged.incomplete
        failures_in_a_row = paged.failures_in_a_row
        if paged.out_of_budget:
            reason = (
                f"refresh stopped at {day}: {settings.hf_refresh_max_requests} requests per run "
                "(PAPERMAIL_HF_REFRESH_MAX_REQUESTS) spent; older days wait for the next fetch"
            )
            job.note(Problem.notice(settings.hf_api_url, None, reason))
            break
        if failures_in_a_row >= REFRESH_FAILURES_IN_A_ROW:
            reason = f"refresh stopped at {day}: {failures_in_a_row} pages in a row failed"
            job.note(Problem.notice(settings.hf_api_url, None, reason))
            break
    return incomplete


def _page_through_day(
    job: Job, settings: Settings, day: date, budget: _Budget, failures_in_a_row: int = 0
) -> _Paged:
    """Every page (``p`` = 0, 1, …) of one day's listing, until a page comes back short.

    A page that failed, or that was not modified (304, so its length is unknown), is followed by
    the next one only if that one was fetched before, i.e. this page was full last time.
    """
    paged, url = _Paged(failures_in_a_row=failures_in_a_row), settings.hf_api_url
    page = 0
    while True:
        if not budget.take():
            paged.out_of_budget = True
            return paged
        params = daily_papers_params(day, page)
        stored = download_and_store(
            job, f"daily papers of {day}, page {page + 1}", url, params, parse_daily_papers
        )
        paged.incomplete += stored.incomplete
        paged.failures_in_a_row = paged.failures_in_a_row + 1 if stored.failed else 0
        if paged.failures_in_a_row >= REFRESH_FAILURES_IN_A_ROW:
            return paged
        page += 1
        if stored.parsed is not None and not stored.failed:
            if stored.parsed.entries_seen < PAGE_LIMIT:
                return paged  # a short page: the day's last
        elif not job.fetched_before(url, daily_papers_params(day, page)):
            return paged
