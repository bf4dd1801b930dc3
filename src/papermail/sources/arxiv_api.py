"""The arXiv API (Atom): id lookups in batches, and paged searches for backfill, politely paced.

arXiv asks for at least 3 seconds between calls; :class:`Pacer` enforces the configured delay
between every attempt, retries included. Errors may come back as a *valid* feed with one entry
titled ``Error`` (with HTTP 400 or 200): that is reported as an error, never stored as a paper.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date
from typing import Protocol

from papermail.arxiv_ids import parse_arxiv_id
from papermail.categories import spelled_out
from papermail.sources.feeds import entry_ref, entry_text, parsed_date, read_feed
from papermail.sources.http import FetchError, HttpClient
from papermail.sources.links import github_url_in
from papermail.sources.normalise import clean_authors, normalise_categories, normalise_text
from papermail.sources.records import PaperRecord, ParsedFeed, Problem

ID_BATCH_SIZE = 100  # ids per lookup call: a short URL, one page of answers
SEARCH_PAGE_SIZE = 200
BACKFILL_MAX_RESULTS = 5000  # a busy day in four big categories is ~1,500 submissions
_ERROR_ID_MARK = "arxiv.org/api/errors"


class Waits(Protocol):
    """Anything that paces calls: :class:`Pacer` in one process, ``api_pacing.SharedPacer`` across all."""

    def wait(self) -> object: ...


class Pacer:
    """Keeps at least ``interval_seconds`` between calls; ``sleep``/``monotonic`` are injectable."""

    def __init__(
        self,
        interval_seconds: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval_seconds, self.sleep, self.monotonic = interval_seconds, sleep, monotonic
        self._last: float | None = None

    def wait(self) -> None:
        """Sleep until the interval since the previous call has passed, then mark this call."""
        if self._last is not None:
            remaining = self._last + self.interval_seconds - self.monotonic()
            if remaining > 0:
                self.sleep(remaining)
        self._last = self.monotonic()


def parse_api_feed(content: bytes, url: str | None = None) -> ParsedFeed:
    """Records from one API answer; an ``Error`` entry makes the whole answer a feed error."""
    feed, problems = read_feed(content, url)
    parsed = ParsedFeed(problems=problems, entries_seen=len(feed.entries))
    parsed.total_results = _int((feed.get("feed") or {}).get("opensearch_totalresults"))
    error = _error_reason(feed.entries)
    if error:
        parsed.problems.append(Problem.feed(url, error))
        return parsed
    for index, entry in enumerate(feed.entries):
        try:
            parsed.records.append(_record(entry))
        except ValueError as exc:
            parsed.problems.append(Problem.entry(url, entry_ref(entry, index), str(exc)))
    return parsed


def _error_reason(entries: list) -> str | None:
    errors = [entry for entry in entries if _ERROR_ID_MARK in (entry.get("id") or "")]
    if not errors:
        return None
    return "arXiv API error: " + "; ".join(
        normalise_text(entry.get("summary") or "") or "no detail" for entry in errors
    )


def _record(entry: dict) -> PaperRecord:
    ident = parse_arxiv_id(entry.get("id") or "")
    title = entry_text(entry, "title")
    if not title:
        raise ValueError("no title")
    tags = [tag.get("term") for tag in entry.get("tags") or []]
    primary, categories = normalise_categories((entry.get("arxiv_primary_category") or {}).get("term"), tags)
    return PaperRecord(
        arxiv_id=ident.id,
        version=ident.version,
        title=title,
        abstract=entry_text(entry, "summary"),
        authors=tuple(clean_authors(author.get("name") for author in entry.get("authors") or [])),
        primary_category=primary,
        categories=tuple(categories),
        published_at=parsed_date(entry, "published_parsed"),
        updated_at=parsed_date(entry, "updated_parsed"),
        # "Code: https://github.com/…" in the authors' comment: the repository GitHub stars track.
        github_url=github_url_in(entry.get("arxiv_comment")),
    )


def _int(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def backfill_query(categories: Sequence[str], day: date) -> str:
    """The search for everything submitted in ``categories`` on ``day`` (UTC)."""
    # The API's cat: matches one category; an archive (astro-ph) is asked for with its categories.
    cats = " OR ".join(f"cat:{category}" for category in spelled_out(categories))
    stamp = day.strftime("%Y%m%d")
    return f"({cats}) AND submittedDate:[{stamp}0000 TO {stamp}2359]"


class ArxivApi:
    """Calls to the arXiv API through a retrying client, one at a time, paced."""

    def __init__(self, client: HttpClient, url: str, pacer: Waits) -> None:
        self.client, self.url, self.pacer = client, url, pacer

    def lookup(self, arxiv_ids: Sequence[str]) -> Iterator[ParsedFeed]:
        """One answer per batch of ids; an id arXiv doesn't return is reported, not guessed."""
        for start in range(0, len(arxiv_ids), ID_BATCH_SIZE):
            batch = list(arxiv_ids[start : start + ID_BATCH_SIZE])
            page = self._call({"id_list": ",".join(batch), "start": 0, "max_results": ID_BATCH_SIZE})
            if not page.failed:
                found = {record.arxiv_id for record in page.records}
                page.problems.extend(
                    Problem.notice(self.url, arxiv_id, "not on the arXiv API yet; looked up again next fetch")
                    for arxiv_id in batch
                    if arxiv_id not in found
                )
            yield page

    def search(
        self,
        query: str,
        *,
        page_size: int = SEARCH_PAGE_SIZE,
        max_results: int = BACKFILL_MAX_RESULTS,
        extra: Mapping[str, str] | None = None,
    ) -> Iterator[ParsedFeed]:
        """The pages of a search, until the results or ``max_results`` run out."""
        start = 0
        while start < max_results:
            size = min(page_size, max_results - start)
            page = self._call({"search_query": query, "start": start, "max_results": size, **(extra or {})})
            total = page.total_results
            if not page.failed and page.entries_seen == 0 and total is not None and start < total:
                # arXiv sometimes answers an empty page in the middle of a result set.
                reason = f"empty page at start={start} of {total} results"
                page.problems.append(Problem.feed(self.url, reason))
            yield page
            start += size
            if page.failed or page.entries_seen < size or (total is not None and start >= total):
                return

    def _call(self, params: Mapping[str, str | int]) -> ParsedFeed:
        try:
            fetched = self.client.get(self.url, params=params, before_attempt=self.pacer.wait)
        except FetchError as exc:
            # A 400 still carries an Atom feed whose Error entry says what was wrong.
            error = _error_reason(read_feed(exc.body, exc.url)[0].entries) if exc.body else None
            return ParsedFeed(problems=[Problem.feed(exc.url, error or exc.reason)])
        return parse_api_feed(fetched.content, fetched.url)
