"""Why there is nothing to show yet: the real cause, and the command that gets past it.

Every "nothing yet" message (``trending``, ``stats``, ``score``, ``digest plan/send/preview``) comes
from here, so they all name the same cause: no papers because the last fetch failed (and why), or
papers but no ranking, or a ranking that holds none of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail.db.bookkeeping import FetchProblem, FetchRun
from papermail.db.models import FetchStatus, Paper, ScoringRun
from papermail.sources.runner import ARXIV, HUGGINGFACE
from papermail.trending import latest_run

FETCH_HINT = "run `papermail fetch` (or `papermail demo load` to try papermail offline)"
SCORE_HINT = "run `papermail score`"


@dataclass(frozen=True)
class LastFetch:
    """The newest fetch run of one source, with its first problem when it had one."""

    source: str
    status: str
    started_at: datetime
    error: str | None

    def describe(self) -> str:
        when = f"{self.started_at:%Y-%m-%d %H:%M} UTC"
        if self.status == FetchStatus.RUNNING:
            return f"{self.source} fetch of {when} is still running"
        error = f": {self.error}" if self.error else ""
        return f"{self.source} fetch of {when} {self.status}{error}"


def last_fetches(session: Session) -> list[LastFetch]:
    """The newest run of each source, oldest source name first, with its first problem."""
    newest = sa.select(sa.func.max(FetchRun.id)).group_by(FetchRun.source)
    runs = session.scalars(sa.select(FetchRun).where(FetchRun.id.in_(newest)).order_by(FetchRun.source))
    found = []
    for run in runs:
        error = session.scalar(
            sa.select(FetchProblem.reason)
            .where(FetchProblem.run_id == run.id, FetchProblem.kind != "notice")
            .order_by(FetchProblem.id)
            .limit(1)
        )
        found.append(LastFetch(run.source, str(run.status), run.started_at, error))
    return found


def no_papers_reason(session: Session) -> str:
    """There are no papers: what the last fetches of papers did about it, and what to run."""
    # The community sources bring signals for known papers, never papers: they can't be the cause.
    fetches = [fetch for fetch in last_fetches(session) if fetch.source in (ARXIV, HUGGINGFACE)]
    if not fetches:
        return f"no papers yet: nothing has been fetched; {FETCH_HINT}"
    return f"no papers yet: the last {'; '.join(f.describe() for f in fetches)}; {FETCH_HINT}"


def paper_count(session: Session) -> int:
    """How many papers are stored."""
    return session.scalar(sa.select(sa.func.count()).select_from(Paper)) or 0


def nothing_ranked_reason(session: Session, run: ScoringRun | None = None) -> str | None:
    """Why no ranking holds any paper, with the next command; None when the latest one does."""
    run = run if run is not None else latest_run(session)
    if run is not None and run.paper_count:
        return None
    papers = paper_count(session)
    if papers == 0:
        return no_papers_reason(session)
    if run is None:
        return f"{papers:,} paper{'' if papers == 1 else 's'} but no ranking yet: {SCORE_HINT}"
    return empty_run_reason(run, papers)


def empty_run_reason(run: ScoringRun, papers: int) -> str:
    """A finished run ranked nothing although papers exist: they are all too old to rank."""
    max_age = (run.params or {}).get("max_age_days")
    limit = f"in the {max_age} days before it (PAPERMAIL_TREND_MAX_AGE_DAYS)" if max_age else "recently"
    return (
        f"the ranking of {run.as_of:%Y-%m-%d %H:%M} UTC holds none of the {papers:,} papers: none was "
        f"published {limit}; run `papermail fetch` for this week's papers"
    )
