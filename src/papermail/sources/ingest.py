"""Storing what a fetch found, in bulk: paper upserts, signal snapshots, and the fetch-run log.

One paper per arXiv id whatever the source. Records merge by these rules:
- a newer version replaces the metadata; an older one never does;
- arXiv's own metadata (RSS, API) replaces Hugging Face's copy; Hugging Face only fills gaps and adds
  its flag and GitHub link;
- ``published_at`` keeps the earliest known first-version date, ``updated_at`` the latest.
A paper counts as *new* only when it is inserted from a ``new`` announcement (or first seen on the
API or Hugging Face); rows inserted for a replacement or cross-list count as *updated*.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from papermail import clock
from papermail.db.models import FetchProblem, FetchRun, FetchStatus, Paper, SignalSnapshot
from papermail.sources.records import PaperRecord, Problem, SignalRecord

# Bounded IN lists: well under SQLite's and PostgreSQL's bind-parameter limits.
CHUNK_SIZE = 500
# The metadata columns a record can change (first/last seen are bookkeeping).
PAPER_FIELDS = (
    "version",
    "title",
    "abstract",
    "authors",
    "primary_category",
    "categories",
    "published_at",
    "updated_at",
    "github_url",
    "on_huggingface",
)
_TEXT_FIELDS = ("title", "abstract", "authors", "primary_category", "categories")
HUGGINGFACE = "huggingface"


def _chunks(items: Sequence[Any], size: int = CHUNK_SIZE) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_ignoring_conflicts(session: Session, model: type, index_elements: Sequence[str]):
    """``INSERT … ON CONFLICT DO NOTHING`` for the session's dialect (SQLite or PostgreSQL).

    It targets the table, not the ORM entity: run through ``session.connection()``, a batch goes
    out as a few multi-row statements. The ORM's bulk path split 3,000 rows into ~300 statements
    and spliced their RETURNING rows together in quadratic time.
    """
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(model.__table__).on_conflict_do_nothing(index_elements=list(index_elements))


# -- papers ---------------------------------------------------------------------------------------


@dataclass
class _State:
    """A paper's merged values while a batch is applied; ``from_arxiv`` says whose metadata it is."""

    values: dict[str, Any]
    from_arxiv: bool
    announced_new: bool = False

    @classmethod
    def of_record(cls, record: PaperRecord) -> _State:
        values = {name: getattr(record, name) for name in PAPER_FIELDS}
        values["authors"], values["categories"] = list(record.authors), list(record.categories)
        return cls(values, record.from_arxiv, record.announced_new)

    @property
    def complete(self) -> bool:
        """Has arXiv's own metadata (Hugging Face has no categories) and a first-version date."""
        return bool(self.values["categories"]) and self.values["published_at"] is not None


def _merge(current: _State, incoming: _State) -> _State:
    """``current`` updated by ``incoming`` (a record, or a batch's merged records) by the rules above."""
    now, new = current.values, incoming.values
    version, new_version = now["version"] or 0, new["version"] or 0
    # arXiv's text beats Hugging Face's copy, whatever the order; between two of the same kind,
    # the newer (or re-sent) version wins.
    prefer = incoming.from_arxiv if incoming.from_arxiv != current.from_arxiv else new_version >= version
    merged = dict(now)
    for name in _TEXT_FIELDS:
        if new[name] and (prefer or not now[name]):
            merged[name] = new[name]
    merged["version"] = max(version, new_version) or None
    merged["published_at"] = _earliest(now["published_at"], new["published_at"])
    merged["updated_at"] = _latest(now["updated_at"], new["updated_at"])
    merged["github_url"] = new["github_url"] or now["github_url"]
    merged["on_huggingface"] = now["on_huggingface"] or new["on_huggingface"]
    return _State(
        merged,
        current.from_arxiv or incoming.from_arxiv,
        current.announced_new or incoming.announced_new,
    )


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(a, b) if a and b else a or b


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(a, b) if a and b else a or b


@dataclass
class UpsertResult:
    """What an upsert did: which papers are new or updated, every row id, which lack arXiv metadata."""

    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    paper_ids: dict[str, int] = field(default_factory=dict)
    incomplete: list[str] = field(default_factory=list)  # to look up on the arXiv API


def upsert_papers(session: Session, records: Iterable[PaperRecord], *, now: datetime) -> UpsertResult:
    """Insert new papers and update changed ones, in a few statements for the whole batch."""
    batch: dict[str, _State] = {}
    for record in records:
        state, incoming = batch.get(record.arxiv_id), _State.of_record(record)
        batch[record.arxiv_id] = _merge(state, incoming) if state else incoming
    result = UpsertResult()
    if not batch:
        return result
    existing = _load(session, list(batch))
    inserted = _insert(session, {k: v for k, v in batch.items() if k not in existing}, now)
    # Another fetch (of the other source) may have inserted some of them since we looked.
    raced = [arxiv_id for arxiv_id in batch if arxiv_id not in existing and arxiv_id not in inserted]
    existing.update(_load(session, raced))

    changes = []
    for arxiv_id, state in batch.items():
        if arxiv_id in inserted:
            result.paper_ids[arxiv_id] = inserted[arxiv_id]
            (result.new if state.announced_new else result.updated).append(arxiv_id)
            if not state.complete:
                result.incomplete.append(arxiv_id)
            continue
        row_id, stored = existing[arxiv_id]
        result.paper_ids[arxiv_id] = row_id
        merged = _merge(stored, state)
        diff = {name: value for name, value in merged.values.items() if value != stored.values[name]}
        if diff:
            changes.append({"id": row_id, **diff})
            result.updated.append(arxiv_id)
        if not merged.complete:
            result.incomplete.append(arxiv_id)
    if changes:
        session.execute(sa.update(Paper), changes)
    seen = [row_id for arxiv_id, (row_id, _) in existing.items() if arxiv_id in batch]
    for chunk in _chunks(seen):
        session.execute(sa.update(Paper).where(Paper.id.in_(chunk)).values(last_seen_at=now))
    return result


def _load(session: Session, arxiv_ids: Sequence[str]) -> dict[str, tuple[int, _State]]:
    columns = [Paper.id, Paper.arxiv_id, *(getattr(Paper, name) for name in PAPER_FIELDS)]
    found: dict[str, tuple[int, _State]] = {}
    for chunk in _chunks(arxiv_ids):
        for row in session.execute(sa.select(*columns).where(Paper.arxiv_id.in_(chunk))):
            values = {name: getattr(row, name) for name in PAPER_FIELDS}
            # Only arXiv metadata has categories: that is how a stored row tells whose it is.
            found[row.arxiv_id] = (row.id, _State(values, from_arxiv=bool(values["categories"])))
    return found


def _insert(session: Session, states: dict[str, _State], now: datetime) -> dict[str, int]:
    if not states:
        return {}
    rows = [
        {"arxiv_id": arxiv_id, **state.values, "first_seen_at": now, "last_seen_at": now}
        for arxiv_id, state in states.items()
    ]
    for row in rows:
        row["version"] = row["version"] or 1
    statement = insert_ignoring_conflicts(session, Paper, ["arxiv_id"]).returning(Paper.arxiv_id, Paper.id)
    return dict(session.connection().execute(statement, rows).all())


def incomplete_papers(session: Session, *, seen_since: datetime, limit: int) -> list[str]:
    """Recently seen papers still without arXiv's metadata, most recent first.

    Those first seen on Hugging Face have no category yet, and replacements of papers we never
    saw have no first-version date. A lookup that failed (or an API index lagging behind the
    listings) is retried by later fetches until the paper is no longer being seen.
    """
    query = (
        sa.select(Paper.arxiv_id)
        .where(
            sa.or_(Paper.primary_category.is_(None), Paper.published_at.is_(None)),
            Paper.last_seen_at >= seen_since,
        )
        .order_by(Paper.last_seen_at.desc(), Paper.id)
        .limit(limit)
    )
    return list(session.scalars(query))


# -- signals --------------------------------------------------------------------------------------


def observation_minute(now: datetime) -> datetime:
    """Snapshots are stamped to the minute, so a repeated fetch within it adds nothing."""
    return now.replace(second=0, microsecond=0)


def append_signals(
    session: Session, signals: Iterable[SignalRecord], paper_ids: dict[str, int], *, observed_at: datetime
) -> int:
    """Append snapshots (ignoring ones already recorded this minute); return how many were added."""
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for signal in signals:
        paper_id = paper_ids.get(signal.arxiv_id)
        if paper_id is not None:
            rows[(paper_id, signal.metric)] = {
                "paper_id": paper_id,
                "source": HUGGINGFACE,
                "metric": signal.metric,
                "value": signal.value,
                "observed_at": observation_minute(observed_at),
            }
    if not rows:
        return 0
    statement = insert_ignoring_conflicts(
        session, SignalSnapshot, ["paper_id", "source", "metric", "observed_at"]
    ).returning(SignalSnapshot.id)
    return len(session.connection().execute(statement, list(rows.values())).all())


# -- the fetch-run log ----------------------------------------------------------------------------

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


@dataclass
class RunCounts:
    """A run's running totals, written to its FetchRun row when it finishes.

    A paper is counted once per run: new if any step inserted it as new, else updated.
    """

    new_ids: set[str] = field(default_factory=set)
    updated_ids: set[str] = field(default_factory=set)
    signals_added: int = 0
    rejected: int = 0
    errors: int = 0
    feeds: int = 0
    failed_feeds: int = 0
    unchanged_feeds: int = 0

    def add_upsert(self, result: UpsertResult) -> None:
        self.new_ids.update(result.new)
        self.updated_ids.update(result.updated)

    @property
    def new_papers(self) -> int:
        return len(self.new_ids)

    @property
    def updated_papers(self) -> int:
        return len(self.updated_ids - self.new_ids)


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
        "new_papers": counts.new_papers,
        "updated_papers": counts.updated_papers,
        "signals_added": counts.signals_added,
        "rejected": counts.rejected,
        "errors": counts.errors,
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
