"""GitHub stars of the code recent papers link: ``GET /repos/{owner}/{repo}``, one snapshot per run.

A paper's repository is Hugging Face's ``githubRepo`` or the first repository URL in the authors'
comment as the arXiv API gives it (either stored as ``Paper.github_url``), else the first
``github.com/<owner>/<repo>`` URL in its abstract (arXiv's RSS listing carries no comments).
GitHub is withdrawing per-star timestamps from its public API, so the velocity comes from our own
snapshots of ``stargazers_count``.

Requests are conditional (GitHub's ETag): a 304 costs no rate limit, and means the count is the
one we saw last. Without ``PAPERMAIL_GITHUB_TOKEN`` GitHub allows 60 requests an hour, so the
budget per run is small and the repositories least recently looked at go first (the newest papers
first among them). A 404 (a renamed or deleted repository) costs that repository; a 403 or 429 (a
rate limit) ends the run, never the fetch: what was stored stays, the rest wait for the next run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa

from papermail import clock
from papermail.config import Settings
from papermail.db.models import Paper, SignalSnapshot
from papermail.sources.http import FetchError
from papermail.sources.job import Job
from papermail.sources.links import github_repository
from papermail.sources.records import ParsedFeed, Problem, SignalRecord, is_count

SOURCE, STARS = "github", "github_stars"
TRACK_FOR = timedelta(days=14)  # stars of older papers no longer move their ranking much
GONE = frozenset({404, 410, 451})  # renamed, deleted or blocked: that repository only
RATE_LIMITED = frozenset({403, 429})
FAILURES_IN_A_ROW = 3  # GitHub is down: the next scheduled run tries again


@dataclass
class Repository:
    """One repository and the recent papers that link it (several papers may share one)."""

    name: str  # owner/repo
    arxiv_ids: list[str] = field(default_factory=list)


def repositories_to_check(session: sa.orm.Session) -> list[Repository]:
    """The repositories of the last 14 days' papers: least recently checked first, then newest."""
    now = clock.now()
    last_checked = (
        sa.select(SignalSnapshot.paper_id, sa.func.max(SignalSnapshot.observed_at).label("at"))
        .where(SignalSnapshot.source == SOURCE, SignalSnapshot.metric == STARS)
        .group_by(SignalSnapshot.paper_id)
        .subquery()
    )
    rows = session.execute(
        sa.select(Paper.arxiv_id, Paper.github_url, Paper.abstract, last_checked.c.at, Paper.born_at)
        .outerjoin(last_checked, last_checked.c.paper_id == Paper.id)
        .where(Paper.born_at >= now - TRACK_FOR, Paper.born_at <= now)
        .where(sa.or_(Paper.github_url.is_not(None), Paper.abstract.contains("github.com")))
    ).all()
    repositories: dict[str, Repository] = {}
    order: dict[str, tuple] = {}
    for arxiv_id, github_url, abstract, checked_at, born in rows:
        if not (name := github_repository(github_url, abstract)):
            continue
        key = name.lower()  # GitHub's names are case-insensitive
        repositories.setdefault(key, Repository(name)).arxiv_ids.append(arxiv_id)
        # Never checked first; then the longest unchecked; among equals the newest paper.
        rank = (checked_at is not None, checked_at or now, -born.timestamp())
        order[key] = min(order.get(key, rank), rank)
    return [repositories[key] for key in sorted(repositories, key=order.__getitem__)]


def parse_repository(content: bytes, url: str, repository: Repository) -> ParsedFeed:
    """The star count of one ``GET /repos/{owner}/{repo}`` answer, for each paper linking it."""
    try:
        stars = json.loads(content).get("stargazers_count")
    except (ValueError, AttributeError, RecursionError) as exc:
        return ParsedFeed(problems=[Problem.feed(url, f"not a repository object: {exc}")])
    if not is_count(stars):
        return ParsedFeed(problems=[Problem.feed(url, f"no stargazers_count in the answer ({stars!r})")])
    return ParsedFeed(signals=[SignalRecord(arxiv_id, STARS, stars) for arxiv_id in repository.arxiv_ids])


def last_stars(session: sa.orm.Session, arxiv_ids: list[str]) -> list[SignalRecord]:
    """The counts GitHub last gave for these papers (a 304 says they still hold)."""
    rows = session.execute(
        sa.select(Paper.arxiv_id, sa.func.max(SignalSnapshot.value))
        .join(SignalSnapshot, SignalSnapshot.paper_id == Paper.id)
        .where(Paper.arxiv_id.in_(arxiv_ids), SignalSnapshot.source == SOURCE, SignalSnapshot.metric == STARS)
        .group_by(Paper.arxiv_id)
    ).all()
    return [SignalRecord(arxiv_id, STARS, value) for arxiv_id, value in rows]


def request_headers(settings: Settings) -> dict[str, str]:
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    if settings.github_token:
        headers["Authorization"] = f"Bearer {settings.github_token}"
    return headers


def fetch(job: Job, settings: Settings) -> None:
    """Snapshot the stars of the recent papers' repositories, within the run's request budget."""
    repositories = repositories_to_check(job.session)
    job.session.commit()
    headers, failures_in_a_row = request_headers(settings), 0
    for done, repository in enumerate(repositories):
        url = f"{settings.github_api_url}/repos/{repository.name}"
        if job.over_budget(settings.github_max_requests, url):
            return
        job.report(SOURCE, f"stars of {repository.name}", done, len(repositories))
        try:
            fetched = job.request("GET", url, headers=headers)
        except FetchError as error:
            if error.status in GONE:
                failures_in_a_row = 0
                reason = f"{error.reason}: renamed or deleted; linked by {', '.join(repository.arxiv_ids)}"
                job.counts.feeds += 1
                job.note(Problem.notice(url, repository.name, reason))
                continue
            job.store(ParsedFeed(problems=[Problem.feed(url, _failure(error))]))
            failures_in_a_row += 1
            if error.status in RATE_LIMITED or failures_in_a_row >= FAILURES_IN_A_ROW:
                job.note(Problem.notice(url, None, "the run stopped here; the rest wait for the next run"))
                return
            continue
        failures_in_a_row = 0
        if fetched.not_modified:  # the counts are the ones GitHub gave last (a 304 was counted)
            job.add_signals(last_stars(job.session, repository.arxiv_ids))
            job.session.commit()
        else:
            job.store(parse_repository(fetched.content, fetched.url, repository), fetched)


def _failure(error: FetchError) -> str:
    if error.status in RATE_LIMITED:
        left = error.headers.get("x-ratelimit-remaining")
        detail = f" ({left} requests left)" if left is not None else ""
        hint = "" if left is None or left != "0" else "; set PAPERMAIL_GITHUB_TOKEN for a higher limit"
        return f"rate limited: {error.reason}{detail}{hint}"
    return error.reason
