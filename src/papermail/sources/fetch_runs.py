"""The fetch-run log: each run's row (the source's lock), its counts, its problems, its outcome."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail import clock
from papermail.db.bookkeeping import FetchProblem, FetchRun
from papermail.db.models import FetchStatus
from papermail.sources.ingest import UpsertResult
from papermail.sources.records import FetchTotals, Problem, totals_of

# A run still "running" after this long belongs to a worker that died: tasks are killed after
# 10 minutes, and a command-line fetch pages through at most a few thousand results.
STALE_RUN_AFTER = timedelta(minutes=30)


class FetchAlreadyRunning(Exception):
    """Another fetch of the same source holds the lock (its running FetchRun row)."""

    def __init__(self, source: str, started_at: datetime | None) -> None:
        since = f" since {started_at:%Y-%m-%d %H:%M} UTC" if started_at else ""
        super().__init__(f"a {source} fetch is already running{since}")
        self.source, self.started_at = source, started_at


def start_run(session: Session, source: str) -> FetchRun:
    """Take the source's fetch lock by inserting its running FetchRun row, and commit it.

    The partial unique index on running rows makes the insert fail if another process holds the
    lock, on SQLite and PostgreSQL alike. A running row older than ``STALE_RUN_AFTER`` is marked
    failed first, so a dead worker can't block a source forever.
    """
    now = clock.now()
    stale = session.scalars(
        sa.update(FetchRun)
        .where(
            FetchRun.source == source,
            FetchRun.status == FetchStatus.RUNNING,
            FetchRun.started_at < now - STALE_RUN_AFTER,
        )
        .values(status=FetchStatus.FAILED, finished_at=now, errors=FetchRun.errors + 1)
        .returning(FetchRun.id)
    ).all()
    for run_id in stale:
        session.add(FetchProblem(run_id=run_id, kind="feed", reason="abandoned: the fetch never finished"))
    run = FetchRun(source=source, started_at=now, status=FetchStatus.RUNNING)
    try:
        with session.begin_nested():
            session.add(run)
    except sa.exc.IntegrityError:
        holder = session.scalar(
            sa.select(FetchRun.started_at).where(
                FetchRun.source == source, FetchRun.status == FetchStatus.RUNNING
            )
        )
        session.commit()  # keep the stale-run cleanup
        raise FetchAlreadyRunning(source, holder) from None
    session.commit()
    return run


@dataclass(kw_only=True)
class RunCounts(FetchTotals):
    """A run's running totals, written to its FetchRun row when it finishes.

    A paper is counted once per run: new if any step inserted it as new, else updated.
    """

    new_ids: set[str] = field(default_factory=set)
    updated_ids: set[str] = field(default_factory=set)
    feeds: int = 0
    failed_feeds: int = 0
    unchanged_feeds: int = 0

    def add_upsert(self, result: UpsertResult) -> None:
        self.new_ids.update(result.new)
        self.updated_ids.update(result.updated)
        self.new_papers = len(self.new_ids)
        self.updated_papers = len(self.updated_ids - self.new_ids)


def record_problems(session: Session, run: FetchRun, problems: Sequence[Problem], counts: RunCounts) -> None:
    """Store problems for the run's log and count them as rejected entries or errors."""
    if not problems:
        return
    session.connection().execute(
        sa.insert(FetchProblem.__table__),
        [
            {
                "run_id": run.id,
                "kind": problem.kind,
                "url": problem.url,
                "entry_ref": problem.entry_ref,
                "reason": problem.reason,
            }
            for problem in problems
        ],
    )
    for problem in problems:
        if problem.kind == "entry":
            counts.rejected += 1
        elif problem.kind == "feed":
            counts.errors += 1


def finish_run(session: Session, run: FetchRun, counts: RunCounts) -> FetchRun:
    """Write the counts and the final status: failed if every feed failed, partial if any problem."""
    if counts.feeds and counts.failed_feeds == counts.feeds:
        status = FetchStatus.FAILED
    elif counts.rejected or counts.errors:
        status = FetchStatus.PARTIAL
    else:
        status = FetchStatus.OK
    values = {
        "status": status,
        "finished_at": clock.now(),
        **totals_of(counts),
    }
    session.execute(sa.update(FetchRun).where(FetchRun.id == run.id).values(**values))
    for name, value in values.items():
        setattr(run, name, value)
    return run


def abandon_run(session: Session, run: FetchRun, reason: str) -> None:
    """Mark a still-running run failed after an unexpected error, so its lock is released at once.

    A run that already finished is left alone: the error came after its results were committed.
    """
    abandoned = session.scalar(
        sa.update(FetchRun)
        .where(FetchRun.id == run.id, FetchRun.status == FetchStatus.RUNNING)
        .values(status=FetchStatus.FAILED, finished_at=clock.now(), errors=FetchRun.errors + 1)
        .returning(FetchRun.id)
    )
    if abandoned:
        session.add(FetchProblem(run_id=run.id, kind="feed", reason=reason[:1000]))


def recent_runs(session: Session, *, source: str | None = None, limit: int = 10) -> list[FetchRun]:
    """The latest runs, newest first, with their problems loaded."""
    query = sa.select(FetchRun).order_by(FetchRun.started_at.desc(), FetchRun.id.desc()).limit(limit)
    if source:
        query = query.where(FetchRun.source == source)
    return list(session.scalars(query.options(sa.orm.selectinload(FetchRun.problems))))


def latest_run_per_source(session: Session) -> dict[str, FetchRun]:
    """The most recent finished-or-running run of each source (for ``papermail stats``)."""
    newest = (
        sa.select(FetchRun.source, sa.func.max(FetchRun.id).label("id")).group_by(FetchRun.source).subquery()
    )
    query = (
        sa.select(FetchRun)
        .join(newest, FetchRun.id == newest.c.id)
        .options(sa.orm.selectinload(FetchRun.problems))
    )
    return {run.source: run for run in session.scalars(query)}
