"""One fetch run of one source: lock, download, parse, store, complete from the API, log, score.

A run commits as it goes, on purpose. Its running FetchRun row is the source's lock, so it must be
visible to other workers before the first download; and no transaction stays open while we wait on
the network (on SQLite an open write transaction would block every other writer, and a read
transaction could not be upgraded to a write once someone else had written).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy.orm import Session

from papermail import clock, task_names
from papermail.config import Settings
from papermail.db.models import FetchRun, FetchStatus
from papermail.queue import enqueue_after_commit
from papermail.sources import arxiv_rss, huggingface
from papermail.sources.arxiv_api import ID_BATCH_SIZE, ArxivApi, Pacer, backfill_query
from papermail.sources.fetch_runs import (
    FetchAlreadyRunning,
    RunCounts,
    abandon_run,
    finish_run,
    record_problems,
    start_run,
)
from papermail.sources.http import Fetched, FetchError, HttpClient, load_validators, store_validators
from papermail.sources.ingest import append_signals, incomplete_papers, upsert_papers
from papermail.sources.records import FetchTotals, ParsedFeed, Problem, totals_of

log = logging.getLogger(__name__)

ARXIV, HUGGINGFACE = "arxiv", "huggingface"
SOURCES = (ARXIV, HUGGINGFACE)
SKIPPED = "skipped"
MAX_PROBLEMS_SHOWN = 10
# Papers an earlier lookup could not complete are retried while they are still being seen, a
# batch at most per run: enough to heal an API outage without hammering the API for lost causes.
RETRY_LOOKUPS_FOR = timedelta(days=7)
RETRY_LOOKUPS_LIMIT = ID_BATCH_SIZE

# (source, what is happening, steps done, steps in total or None) -> shown by the command line.
Progress = Callable[[str, str, int, int | None], None]


def _no_progress(_source: str, _what: str, _done: int, _total: int | None) -> None:
    return None


@dataclass
class FetchSummary(FetchTotals):
    """What one run did, for the command line, the task result and logs."""

    source: str
    status: str  # a FetchStatus value, or "skipped" when another fetch held the lock
    run_id: int | None = None
    unchanged_feeds: int = 0
    problems: list[str] = field(default_factory=list)  # the first few, one line each
    problem_count: int = 0  # all of them, notices included; ``papermail fetch log`` lists them

    @property
    def completed(self) -> bool:
        """True when the run ran and did not fail outright."""
        return self.status in (FetchStatus.OK, FetchStatus.PARTIAL)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_fetch(
    session: Session,
    settings: Settings,
    source: str,
    *,
    day: date | None = None,
    http: HttpClient | None = None,
    pacer: Pacer | None = None,
    progress: Progress | None = None,
) -> FetchSummary:
    """Fetch ``source`` now (``day`` backfills one day); skip if another fetch of it is running.

    ``http`` and ``pacer`` are injectable so tests control retries' sleeps and the API's pacing.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    try:
        run = start_run(session, source)
    except FetchAlreadyRunning as exc:
        log.info("%s", exc)
        return FetchSummary(source, SKIPPED, problems=[str(exc)], problem_count=1)
    client = http or HttpClient.from_settings(settings)
    api = ArxivApi(client, settings.arxiv_api_url, pacer or Pacer(settings.arxiv_delay_seconds))
    job = _Job(session, run, client, api, progress or _no_progress)
    try:
        if source == ARXIV:
            _fetch_arxiv(job, settings, day)
        else:
            _fetch_huggingface(job, settings, day)
        finish_run(session, run, job.counts)
        if run.status != FetchStatus.FAILED:
            # The trending feature ranks again after every fetch.
            enqueue_after_commit(session, task_names.SCORE_PAPERS)
        session.commit()
    except BaseException as exc:
        # Release the lock now rather than after STALE_RUN_AFTER, and say why in the log.
        session.rollback()
        abandon_run(session, run, f"the fetch stopped: {exc!r}")
        session.commit()
        raise
    finally:
        if http is None:
            client.close()
    log.info("fetched %s: %s", source, _one_line(run))
    return FetchSummary(
        source=source,
        status=str(run.status),
        run_id=run.id,
        **totals_of(run),
        unchanged_feeds=job.counts.unchanged_feeds,
        problems=[_describe(problem) for problem in job.problems[:MAX_PROBLEMS_SHOWN]],
        problem_count=len(job.problems),
    )


def _one_line(run: FetchRun) -> str:
    return (
        f"{run.status}, {run.new_papers} new, {run.updated_papers} updated, {run.signals_added} signals, "
        f"{run.rejected} rejected, {run.errors} errors"
    )


def _describe(problem: Problem) -> str:
    where = problem.entry_ref or problem.url or ""
    return f"{problem.kind} {where}: {problem.reason}" if where else f"{problem.kind}: {problem.reason}"


class _Job:
    """The state of one run: its session, clients, counts and the problems seen so far."""

    def __init__(self, session: Session, run: FetchRun, http: HttpClient, api: ArxivApi, progress: Progress):
        self.session, self.run, self.http, self.api, self.report = session, run, http, api, progress
        self.counts = RunCounts()
        self.problems: list[Problem] = []

    def download(self, url: str, params: Mapping[str, str | int] | None = None) -> Fetched | None:
        """A conditional GET; None (with the failure recorded) if the feed could not be had."""
        full_url = str(httpx.URL(url, params=params))
        validators = load_validators(self.session, full_url)
        self.session.commit()  # no transaction stays open while we wait on the network
        try:
            fetched = self.http.get(url, params=params, validators=validators)
        except FetchError as exc:
            self.store(ParsedFeed(problems=[Problem.feed(exc.url, exc.reason)]))
            return None
        if fetched.not_modified:
            self.counts.feeds += 1
            self.counts.unchanged_feeds += 1
        return fetched

    def store(self, parsed: ParsedFeed, fetched: Fetched | None = None) -> list[str]:
        """Store one parsed answer and its problems, commit, and return the ids still incomplete."""
        now = clock.now()
        self.counts.feeds += 1
        if parsed.failed:
            self.counts.failed_feeds += 1
        result = upsert_papers(self.session, parsed.records, now=now)
        self.counts.add_upsert(result)
        if parsed.signals:
            self.counts.signals_added += append_signals(
                self.session, parsed.signals, result.paper_ids, observed_at=now
            )
        record_problems(self.session, self.run, parsed.problems, self.counts)
        self.problems.extend(parsed.problems)
        # A feed that failed (even a valid error channel) is fetched in full next time, so its
        # error is reported again rather than hidden behind a 304.
        if fetched is not None and not parsed.failed:
            store_validators(self.session, fetched)
        self.session.commit()
        return result.incomplete

    def complete_from_api(self, arxiv_ids: list[str]) -> None:
        """Look papers up on the arXiv API (batched, paced) so they get arXiv's full metadata.

        Besides this run's ``arxiv_ids``, a few papers that earlier lookups could not complete
        are retried, so a failed or lagging API call heals itself.
        """
        earlier = incomplete_papers(
            self.session, seen_since=clock.now() - RETRY_LOOKUPS_FOR, limit=RETRY_LOOKUPS_LIMIT
        )
        arxiv_ids = list(dict.fromkeys([*arxiv_ids, *earlier]))
        self.session.commit()  # no transaction stays open while we wait on the network
        if not arxiv_ids:
            return
        batches = -(-len(arxiv_ids) // ID_BATCH_SIZE)
        what = f"looking up {len(arxiv_ids)} papers on arXiv"
        self.report(self.run.source, what, 0, batches)
        for done, page in enumerate(self.api.lookup(arxiv_ids), start=1):
            self.store(page)
            self.report(self.run.source, what, done, batches)


def _fetch_arxiv(job: _Job, settings: Settings, day: date | None) -> None:
    if day:
        _backfill_arxiv(job, settings, day)
    else:
        # Replacements of papers we have never seen lack their first version's date: completed
        # from the API.
        _fetch_feed(job, "the listing", arxiv_rss.rss_url(settings), None, arxiv_rss.parse_rss)


def _backfill_arxiv(job: _Job, settings: Settings, day: date) -> None:
    query = backfill_query(settings.arxiv_categories, day)
    extra = {"sortBy": "submittedDate", "sortOrder": "ascending"}
    for page_number, page in enumerate(job.api.search(query, extra=extra), start=1):
        job.report(ARXIV, f"backfilling {day}: page {page_number}", page_number, None)
        job.store(page)


def _fetch_huggingface(job: _Job, settings: Settings, day: date | None) -> None:
    # Papers first seen on Hugging Face get arXiv's own metadata (categories above all) from the API.
    params = huggingface.daily_papers_params(day)
    _fetch_feed(job, "daily papers", settings.hf_api_url, params, huggingface.parse_daily_papers)


def _fetch_feed(
    job: _Job,
    what: str,
    url: str,
    params: Mapping[str, str | int] | None,
    parse: Callable[[bytes, str], ParsedFeed],
) -> None:
    """Download one feed (conditionally), store it, then complete what it left incomplete."""
    job.report(job.run.source, f"downloading {what}", 0, None)
    fetched = job.download(url, params)
    if fetched is None:
        return
    incomplete: list[str] = []
    if not fetched.not_modified:
        parsed = parse(fetched.content, fetched.url)
        job.report(job.run.source, f"storing {len(parsed.records)} papers", 0, None)
        incomplete = job.store(parsed, fetched)
    job.complete_from_api(incomplete)
