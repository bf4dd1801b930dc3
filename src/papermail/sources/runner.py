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
from datetime import date
from types import MappingProxyType
from typing import Any

from sqlalchemy.orm import Session

from papermail import task_names
from papermail.celery_app import enqueue_after_commit
from papermail.config import Settings
from papermail.db.bookkeeping import FetchRun
from papermail.db.models import FetchStatus
from papermail.sources import arxiv, bluesky, github, hackernews, huggingface, semantic_scholar
from papermail.sources.api_pacing import arxiv_pacer_for
from papermail.sources.arxiv_api import ArxivApi, Waits
from papermail.sources.fetch_runs import FetchAlreadyRunning, abandon_run, finish_run, start_run
from papermail.sources.http import HttpClient
from papermail.sources.job import Job, Progress
from papermail.sources.records import FetchTotals, Problem, totals_of

log = logging.getLogger(__name__)

# The paper sources: they bring papers in (with arXiv's or Hugging Face's metadata).
ARXIV, HUGGINGFACE = arxiv.SOURCE, huggingface.SOURCE
# The community sources: popularity signals only, for papers arXiv or Hugging Face brought in.
GITHUB, HACKERNEWS, BLUESKY = github.SOURCE, hackernews.SOURCE, bluesky.SOURCE
SEMANTIC_SCHOLAR = semantic_scholar.SOURCE
SIGNAL_SOURCES = (GITHUB, HACKERNEWS, BLUESKY, SEMANTIC_SCHOLAR)
SOURCES = (ARXIV, HUGGINGFACE, *SIGNAL_SOURCES)
# Each source's fetch: the paper sources can backfill one day, the community sources cannot.
PAPER_FETCHERS: Mapping[str, Callable[[Job, Settings, date | None], None]] = MappingProxyType(
    {ARXIV: arxiv.fetch, HUGGINGFACE: huggingface.fetch}
)
SIGNAL_FETCHERS: Mapping[str, Callable[[Job, Settings], None]] = MappingProxyType(
    {
        GITHUB: github.fetch,
        HACKERNEWS: hackernews.fetch,
        BLUESKY: bluesky.fetch,
        SEMANTIC_SCHOLAR: semantic_scholar.fetch,
    }
)
SKIPPED = "skipped"
MAX_PROBLEMS_SHOWN = 10


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
        if source in PAPER_FETCHERS:
            PAPER_FETCHERS[source](job, settings, day)
        else:
            SIGNAL_FETCHERS[source](job, settings)
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
