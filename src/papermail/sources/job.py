"""One fetch run's state and the steps every source takes: download, store, complete from the API.

A source's ``fetch(job, settings)`` gets a :class:`Job` from :func:`papermail.sources.runner.run_fetch`
and reports through it: what it downloaded, stored and could not have. Each step commits, so no
transaction stays open while the run waits on the network.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.orm import Session

from papermail import clock
from papermail.db.bookkeeping import FetchRun
from papermail.sources.arxiv_api import ID_BATCH_SIZE, ArxivApi
from papermail.sources.fetch_runs import RunCounts, record_problems
from papermail.sources.http import Fetched, FetchError, HttpClient, load_validators, store_validators
from papermail.sources.ingest import append_signals, incomplete_papers, paper_ids_of, upsert_papers
from papermail.sources.records import ParsedFeed, Problem, SignalRecord

# Papers an earlier lookup could not complete are retried while they are still being seen, a
# batch at most per run: enough to heal an API outage without hammering the API for lost causes.
RETRY_LOOKUPS_FOR = timedelta(days=7)
RETRY_LOOKUPS_LIMIT = ID_BATCH_SIZE

# (source, what is happening, steps done, steps in total or None) -> shown by the command line.
Progress = Callable[[str, str, int, int | None], None]


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

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        json: object = None,
        before_attempt: Callable[[], None] | None = None,
        conditional: bool = True,
    ) -> Fetched:
        """Send one request; raise FetchError if it could not be had.

        ``conditional`` sends the validators of the URL's last 200 (a lookup in the database), and
        a 304 to it counts as an unchanged feed. Commits first, so no transaction stays open
        while the run waits on the network.
        """
        validators = None
        if conditional:
            validators = load_validators(self.session, str(httpx.URL(url, params=params)))
        self.session.commit()  # no transaction stays open while we wait on the network
        fetched = self.http.request(
            method,
            url,
            params=params,
            validators=validators,
            headers=headers,
            json=json,
            before_attempt=before_attempt,
        )
        if conditional and fetched.not_modified:
            self.counts.feeds += 1
            self.counts.unchanged_feeds += 1
        return fetched

    def download(
        self, url: str, params: Mapping[str, str | int] | None = None, *, method: str = "GET", **options: Any
    ) -> Fetched | None:
        """A :meth:`request` (by default a conditional GET); None, with the failure stored as a
        feed problem, if it could not be had. ``options`` are :meth:`request`'s."""
        try:
            return self.request(method, url, params=params, **options)
        except FetchError as exc:
            self.store(ParsedFeed(problems=[Problem.feed(exc.url, exc.reason)]))
            return None

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


@dataclass
class Stored:
    """What downloading and storing one feed gave."""

    fetched: Fetched | None = None
    parsed: ParsedFeed | None = None  # None when the download failed or was not modified
    incomplete: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """The page could not be had, or its answer was an error."""
        return self.fetched is None or (self.parsed is not None and self.parsed.failed)


def download_and_store(
    job: Job,
    what: str,
    url: str,
    params: Mapping[str, str | int] | None,
    parse: Callable[[bytes, str], ParsedFeed],
) -> Stored:
    """Download one feed (conditionally) and store it; return what it left incomplete."""
    job.report(job.run.source, f"downloading {what}", 0, None)
    fetched = job.download(url, params)
    if fetched is None or fetched.not_modified:
        return Stored(fetched)
    parsed = parse(fetched.content, fetched.url)
    job.report(job.run.source, f"storing {len(parsed.records)} papers", 0, None)
    return Stored(fetched, parsed, job.store(parsed, fetched))
