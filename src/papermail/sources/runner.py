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
from papermail.celery_app import enqueue_after_commit
from papermail.config import Settings
from papermail.db.bookkeeping import FetchRun
from papermail.db.models import FetchStatus
from papermail.sources import arxiv_rss, huggingface
from papermail.sources.api_pacing import arxiv_pacer_for
from papermail.sources.arxiv_api import ID_BATCH_SIZE, ArxivApi, Waits, backfill_query
from papermail.sources.fetch_runs import (
    FetchAlreadyRunning,
    RunCounts,
    abandon_run,
    finish_run,
    record_problems,
    start_run,
)
from papermail.sources.http import Fetched, FetchError, HttpClient, load_validators, store_validators
from papermail.sources.ingest import append_signals, incomplete_papers, paper_ids_of, upsert_papers
from papermail.sources.records import FetchTotals, ParsedFeed, Problem, SignalRecord, totals_of

log = logging.getLogger(__name__)

ARXIV, HUGGINGFACE = "arxiv", "huggingface"
# The community sources: popularity signals only, for papers arXiv or Hugging Face brought in.
GITHUB, HACKERNEWS, BLUESKY, SEMANTIC_SCHOLAR = "github", "hackernews", "bluesky", "semanticscholar"
SIGNAL_SOURCES = (GITHUB, HACKERNEWS, BLUESKY, SEMANTIC_SCHOLAR)
SOURCES = (ARXIV, HUGGINGFACE, *SIGNAL_SOURCES)
SKIPPED = "skipped"
MAX_PROBLEMS_SHOWN = 10
# Papers an earlier lookup could not complete are retried while they are still being seen, a
# batch at most per run: enough to heal an API outage without hammering the API for lost causes.
RETRY_LOOKUPS_FOR = timedelta(days=7)
RETRY_LOOKUPS_LIMIT = ID_BATCH_SIZE
# Pages in a row that failed (after their retries) before the Hugging Face refresh gives up for
# this run: the site is down, and the next scheduled fetch tries again.
REFRESH_FAILURES_IN_A_ROW = 3

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
    pacer: Waits | None = None,
    progress: Progress | None = None,
) -> FetchSummary:
    """Fetch ``source`` now (``day`` backfills one day); skip if another fetch of it is running.

    ``http`` and ``pacer`` are injectable so tests control retries' sleeps and the API's pacing.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    if off := source_off_reason(settings, source):
        return FetchSummary(source, SKIPPED, problems=[off], problem_count=1)
    try:
        run = start_run(session, source)
    except FetchAlreadyRunning as exc:
        log.info("%s", exc)
        return FetchSummary(source, SKIPPED, problems=[str(exc)], problem_count=1)
    client = http or HttpClient.from_settings(settings)
    api = ArxivApi(client, settings.arxiv_api_url, pacer or arxiv_pacer_for(settings))
    job = Job(session, run, client, api, progress or _no_progress)
    try:
        if source == ARXIV:
            _fetch_arxiv(job, settings, day)
        elif source == HUGGINGFACE:
            _fetch_huggingface(job, settings, day)
        else:
            signal_fetchers()[source](job, settings)
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


def signal_fetchers() -> dict[str, Callable[[Job, Settings], None]]:
    """Each community source's fetch (imported here: those modules use this one's Job)."""
    from papermail.sources import bluesky, github, hackernews, semantic_scholar

    return {
        GITHUB: github.fetch,
        HACKERNEWS: hackernews.fetch,
        BLUESKY: bluesky.fetch,
        SEMANTIC_SCHOLAR: semantic_scholar.fetch,
    }


def source_off_reason(settings: Settings, source: str) -> str | None:
    """Why ``source`` is not fetched with these settings, or None when it is."""
    if source == BLUESKY and not settings.bluesky_handle:
        return "off: set PAPERMAIL_BLUESKY_HANDLE and PAPERMAIL_BLUESKY_APP_PASSWORD to follow Bluesky"
    return None


def _one_line(run: FetchRun) -> str:
    return (
        f"{run.status}, {run.new_papers} new, {run.updated_papers} updated, {run.signals_added} signals, "
        f"{run.rejected} rejected, {run.errors} errors"
    )


def _describe(problem: Problem) -> str:
    where = problem.entry_ref or problem.url or ""
    return f"{problem.kind} {where}: {problem.reason}" if where else f"{problem.kind}: {problem.reason}"


class Job:
    """The state of one run: its session, clients, counts and the problems seen so far."""

    def __init__(self, session: Session, run: FetchRun, http: HttpClient, api: ArxivApi, progress: Progress):
        self.session, self.run, self.http, self.api, self.report = session, run, http, api, progress
        self.counts = RunCounts()
        self.problems: list[Problem] = []
        # A client may serve several runs (tests, the command line); a stand-in may not count at all.
        self._attempts_before = getattr(http, "attempts", 0)

    @property
    def requests_sent(self) -> int:
        """Requests this run sent so far, retries included."""
        return getattr(self.http, "attempts", 0) - self._attempts_before

    def fetched_before(self, url: str, params: Mapping[str, str | int] | None = None) -> bool:
        """True if a 200 for this URL left validators for a conditional GET."""
        return load_validators(self.session, str(httpx.URL(url, params=params))) is not None

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

    def note(self, problem: Problem) -> None:
        """Record a problem that belongs to no answer (e.g. a spent request budget), and commit."""
        record_problems(self.session, self.run, [problem], self.counts)
        self.problems.append(problem)
        self.session.commit()

    def store(self, parsed: ParsedFeed, fetched: Fetched | None = None) -> list[str]:
        """Store one parsed answer and its problems, commit, and return the ids still incomplete."""
        now = clock.now()
        self.counts.feeds += 1
        if parsed.failed:
            self.counts.failed_feeds += 1
        result = upsert_papers(self.session, parsed.records, now=now)
        self.counts.add_upsert(result)
        if parsed.signals:
            self.add_signals(parsed.signals, result.paper_ids)
        record_problems(self.session, self.run, parsed.problems, self.counts)
        self.problems.extend(parsed.problems)
        # A feed that failed (even a valid error channel) is fetched in full next time, so its
        # error is reported again rather than hidden behind a 304.
        if fetched is not None and not parsed.failed:
            store_validators(self.session, fetched)
        self.session.commit()
        return result.incomplete

    def add_signals(self, signals: list[SignalRecord], paper_ids: dict[str, int] | None = None) -> None:
        """Append snapshots of this run's source for the papers we know; a caller commits.

        A community source's signal for a paper papermail does not follow is dropped: those
        sources bring no metadata, and a paper enters through arXiv or Hugging Face.
        """
        known = dict(paper_ids or {})
        if missing := {s.arxiv_id for s in signals} - known.keys():
            known.update(paper_ids_of(self.session, missing))
        self.counts.signals_added += append_signals(
            self.session, signals, known, observed_at=clock.now(), source=self.run.source
        )

    def over_budget(self, budget: int, url: str) -> bool:
        """True (with a notice in the log) once this run has sent ``budget`` requests."""
        if self.requests_sent < budget:
            return False
        reason = f"stopped after {self.requests_sent} requests (this source's budget per run); the rest wait"
        self.note(Problem.notice(url, None, reason))
        return True

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


def _fetch_arxiv(job: Job, settings: Settings, day: date | None) -> None:
    # Every category someone follows is fetched, not only the configured ones.
    categories = arxiv_rss.categories_to_fetch(job.session, settings)
    if day:
        _backfill_arxiv(job, categories, day)
        return
    # Replacements of papers we have never seen lack their first version's date: completed from
    # the API, once for all the feeds.
    urls, incomplete = arxiv_rss.rss_urls(settings, categories), []
    for number, url in enumerate(urls, start=1):
        what = "the listing" if len(urls) == 1 else f"the listing ({number} of {len(urls)})"
        incomplete += _download_and_store(job, what, url, None, arxiv_rss.parse_rss).incomplete
    job.complete_from_api(list(dict.fromkeys(incomplete)))


def _backfill_arxiv(job: Job, categories: list[str], day: date) -> None:
    query = backfill_query(categories, day)
    extra = {"sortBy": "submittedDate", "sortOrder": "ascending"}
    for page_number, page in enumerate(job.api.search(query, extra=extra), start=1):
        job.report(ARXIV, f"backfilling {day}: page {page_number}", page_number, None)
        job.store(page)


def _fetch_huggingface(job: Job, settings: Settings, day: date | None) -> None:
    # Papers first seen on Hugging Face get arXiv's own metadata (categories above all) from the API.
    if day:
        incomplete = _page_through_day(job, settings, day, _Budget(None)).incomplete
    else:
        params = huggingface.daily_papers_params(None)
        incomplete = _download_and_store(
            job, "daily papers", settings.hf_api_url, params, huggingface.parse_daily_papers
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
    for day in huggingface.refresh_days(clock.now().date(), settings.hf_refresh_days):
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
        params = huggingface.daily_papers_params(day, page)
        stored = _download_and_store(
            job, f"daily papers of {day}, page {page + 1}", url, params, huggingface.parse_daily_papers
        )
        paged.incomplete += stored.incomplete
        paged.failures_in_a_row = paged.failures_in_a_row + 1 if stored.failed else 0
        if paged.failures_in_a_row >= REFRESH_FAILURES_IN_A_ROW:
            return paged
        page += 1
        if stored.parsed is not None and not stored.failed:
            if stored.parsed.entries_seen < huggingface.PAGE_LIMIT:
                return paged  # a short page: the day's last
        elif not job.fetched_before(url, huggingface.daily_papers_params(day, page)):
            return paged


@dataclass
class _Stored:
    fetched: Fetched | None = None
    parsed: ParsedFeed | None = None  # None when the download failed or was not modified
    incomplete: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """The page could not be had, or its answer was an error."""
        return self.fetched is None or (self.parsed is not None and self.parsed.failed)


def _download_and_store(
    job: Job,
    what: str,
    url: str,
    params: Mapping[str, str | int] | None,
    parse: Callable[[bytes, str], ParsedFeed],
) -> _Stored:
    """Download one feed (conditionally) and store it; return what it left incomplete."""
    job.report(job.run.source, f"downloading {what}", 0, None)
    fetched = job.download(url, params)
    if fetched is None or fetched.not_modified:
        return _Stored(fetched)
    parsed = parse(fetched.content, fetched.url)
    job.report(job.run.source, f"storing {len(parsed.records)} papers", 0, None)
    return _Stored(fetched, parsed, job.store(parsed, fetched))
