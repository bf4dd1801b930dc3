"""Hugging Face daily papers (``/api/daily_papers``): popularity signals, plus papers not yet seen.

Both schemas are read. 2026: ``paper.upvotes``, top-level ``numComments``, sometimes
``paper.githubRepo``/``paper.githubStars``, ``paper.submittedOnDailyAt``. 2024: no
``submittedOnDailyAt``, authors carry ``user``/``status``, and titles can be hard-wrapped.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

from papermail.arxiv_ids import parse_arxiv_id
from papermail.sources.normalise import clean_authors, normalise_text, safe_http_url
from papermail.sources.records import PaperRecord, ParsedFeed, Problem, SignalRecord

PAGE_LIMIT = 100  # the most the endpoint returns per call
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
    signals = [
        SignalRecord(ident.id, metric, value)
        for metric, value in metrics.items()
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0
    ]
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
