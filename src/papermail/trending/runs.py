"""Scoring runs: rank every recent paper in bulk, store the ranking, and read it back.

A run reads the signal time series with one aggregate query (one row per paper and metric, never
one query per paper) and the papers with another, scores each paper with the pure formula in
:mod:`.score`, and writes a :class:`ScoringRun` with one ranked :class:`TrendScore` per paper.
A run ranks by one velocity window; :func:`score_windows` writes a run for each of ``WINDOWS``.
Digests pin a run of their own window, so every digest of a period reads the same ranking however
often scoring runs afterwards.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail import clock
from papermail.categories import ARCHIVES
from papermail.db.models import Digest, Paper, ScoringRun, TrendScore
from papermail.trending.params import TrendParams
from papermail.trending.score import ScoredPaper, rank, score_paper_windows
from papermail.trending.signals import read_paper_series
from papermail.trending.windows import DEFAULT_WINDOW, WINDOWS

if TYPE_CHECKING:
    from papermail.config import Settings

SCORE_COLUMNS = ("run_id", "paper_id", "rank", "score", "evidence")
SCORE_COLUMN_TYPES = ("int4", "int4", "int4", "float8", "text")  # PostgreSQL's, for binary COPY


@dataclass(frozen=True, slots=True)
class RankedPaper:
    """A paper's place in a scoring run, with the evidence line digests show ("why this paper")."""

    rank: int
    score: float
    evidence: str
    paper: Paper


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a scoring run did, for the command line and logs."""

    run_id: int
    as_of: datetime
    paper_count: int
    pruned_runs: int
    window: str = DEFAULT_WINDOW


def score_windows(session: Session, settings: Settings, *, as_of: datetime | None = None) -> list[RunSummary]:
    """A run for each of ``WINDOWS``, all as of the same time (default now): what digests need."""
    params = [TrendParams.from_settings(settings, window) for window in WINDOWS]
    return score_runs(session, params, keep_runs=settings.trend_keep_runs, as_of=as_of)


def score_papers(
    session: Session, params: TrendParams, *, keep_runs: int, as_of: datetime | None = None
) -> RunSummary:
    """Rank every paper born within ``params.max_age`` of ``as_of`` (default now) as a new run."""
    return score_runs(session, [params], keep_runs=keep_runs, as_of=as_of)[0]


def score_runs(
    session: Session, windows: Sequence[TrendParams], *, keep_runs: int, as_of: datetime | None = None
) -> list[RunSummary]:
    """A run per parameter set (they differ only in their window), from one read of the signals.

    Keeps the newest ``keep_runs`` runs of each window and every run a digest pinned; older ones are
    deleted (counted in the last summary).
    """
    as_of = as_of or clock.now()
    # The run rows are written first: on SQLite this takes the write lock before the long read, so
    # a fetch committing meanwhile cannot invalidate our snapshot and fail the run at its first write.
    runs = [ScoringRun(as_of=as_of, window=p.window_name, params=p.as_json()) for p in windows]
    session.add_all(runs)
    session.flush()
    with _cyclic_gc_paused(), _jit_off(session):
        _write_rankings(session, runs, windows, as_of)
    session.flush()
    pruned = prune_runs(session, keep_runs)
    return [
        RunSummary(run.id, as_of, run.paper_count, pruned if run is runs[-1] else 0, run.window)
        for run in runs
    ]


def _write_rankings(
    session: Session, runs: Sequence[ScoringRun], windows: Sequence[TrendParams], as_of: datetime
) -> None:
    """Score every paper in each of ``windows`` and write each ranking as its run's scores."""
    papers = read_paper_series(session, windows, as_of)
    # One tuple of scores per paper, turned into one tuple of scores per window.
    scored = list(zip(*(score_paper_windows(paper, windows) for paper in papers), strict=True))
    for run, found in zip(runs, scored or [()] * len(runs), strict=True):
        ranked = rank(found)
        _insert_scores(session, run.id, ranked)
        run.paper_count = len(ranked)
        run.finished_at = clock.now()


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a run builds a few hundred thousand small objects.

    They form no reference cycles, so reference counting frees them all the same; but every full
    collection walks all of them again, which measured a fifth of a run's CPU time. They must be
    freed before it resumes: the first collection after it would walk them all (0.1 s measured).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def _jit_off(session: Session) -> Iterator[None]:
    """Turn PostgreSQL's JIT compiler off for this transaction while a run reads and writes.

    The series aggregate's cost estimate is far above ``jit_above_cost``, so PostgreSQL compiled it
    before returning the first row: 0.2-0.3 s of server CPU that made the aggregation no faster.
    The setting is transaction-local: an error rolls it back with the transaction.
    """
    if session.connection().dialect.name != "postgresql":
        yield
        return
    previous = session.scalar(sa.text("SELECT current_setting('jit')"))
    session.execute(sa.text("SELECT set_config('jit', 'off', true)"))
    yield
    session.execute(sa.text("SELECT set_config('jit', :previous, true)"), {"previous": previous})


# -- writing and pruning runs ----------------------------------------------------------------------


def _insert_scores(session: Session, run_id: int, ranked: Sequence[ScoredPaper]) -> None:
    if not ranked:
        return
    rows = (
        (run_id, paper_id, i, score, evidence)
        for i, (paper_id, _arxiv_id, score, evidence) in enumerate(ranked, start=1)
    )
    connection = session.connection()
    table, columns = TrendScore.__tablename__, ", ".join(SCORE_COLUMNS)
    if connection.dialect.name == "postgresql":
        # COPY writes a whole ranking several times faster than batched multi-row INSERTs.
        with (
            connection.connection.driver_connection.cursor() as cursor,
            cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(SCORE_COLUMN_TYPES)
            for row in rows:
                copy.write_row(row)
    else:
        # SQLite: the driver's own executemany, fed plain tuples one at a time as they are made.
        placeholders = ", ".join("?" * len(SCORE_COLUMNS))
        connection.connection.driver_connection.executemany(
            f"INSERT INTO {table} ({columns}) VALUES ({placeholders})",  # noqa: S608
            rows,
        )


def prune_runs(session: Session, keep_runs: int) -> int:
    """Delete runs beyond the newest ``keep_runs`` of each window that no digest pinned; return how many."""
    place = (
        sa.func.row_number()
        .over(partition_by=ScoringRun.window, order_by=(ScoringRun.as_of.desc(), ScoringRun.id.desc()))
        .label("place")
    )
    placed = sa.select(ScoringRun.id, place).subquery()
    newest = sa.select(placed.c.id).where(placed.c.place <= keep_runs)
    pinned = sa.select(Digest.scoring_run_id).where(Digest.scoring_run_id.is_not(None))
    old = session.scalars(
        sa.select(ScoringRun.id).where(ScoringRun.id.not_in(newest), ScoringRun.id.not_in(pinned))
    ).all()
    if old:
        session.execute(sa.delete(TrendScore).where(TrendScore.run_id.in_(old)))
        session.execute(sa.delete(ScoringRun).where(ScoringRun.id.in_(old)))
    return len(old)


# -- reading rankings (the digest and the admin commands use these) ---------------------------------


def latest_run(session: Session, window: str = DEFAULT_WINDOW) -> ScoringRun | None:
    """The newest finished scoring run of ``window`` ("24h", "7d"), or None before the first one."""
    return session.scalars(
        sa.select(ScoringRun)
        .where(ScoringRun.finished_at.is_not(None), ScoringRun.window == window)
        .order_by(ScoringRun.as_of.desc(), ScoringRun.id.desc())
        .limit(1)
    ).first()


def in_topics(topics: Iterable[str]) -> sa.ColumnElement[bool]:
    """Papers listed in any of ``topics`` (arXiv categories or archives, cross-lists included)."""
    # ``categories`` is a JSON list of strings. Matching the JSON-encoded name, quotes included, is
    # exact ("cs.LG" never matches "cs.LGX") and works on SQLite's and PostgreSQL's JSON alike. An
    # archive ("astro-ph") also matches its categories' names up to their dot ('"astro-ph.').
    as_text = sa.cast(Paper.categories, sa.Text)
    patterns = [json.dumps(t) for t in topics] + [f'"{t}.' for t in topics if t in ARCHIVES]
    return sa.or_(sa.false(), *(as_text.like(f"%{_escape_like(p)}%", escape="\\") for p in patterns))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def select_ranked(run_id: int, topics: Iterable[str] | None = None) -> sa.Select[tuple[TrendScore, Paper]]:
    """(TrendScore, Paper) rows of a run in rank order, optionally only in ``topics``; refine freely."""
    stmt = (
        sa.select(TrendScore, Paper)
        .join(Paper, Paper.id == TrendScore.paper_id)
        .where(TrendScore.run_id == run_id)
        .order_by(TrendScore.rank)
    )
    topics = list(topics or ())
    return stmt.where(in_topics(topics)) if topics else stmt


def ranked_papers(
    session: Session, run_id: int, *, topics: Iterable[str] | None = None, limit: int | None = None
) -> list[RankedPaper]:
    """A run's papers in rank order (the run's own ranks), optionally only in ``topics``."""
    stmt = select_ranked(run_id, topics).limit(limit)
    return [RankedPaper(ts.rank, ts.score, ts.evidence, paper) for ts, paper in session.execute(stmt)]


def ranked_without_category(session: Session, run_id: int) -> int:
    """How many papers of a ranking have no arXiv category yet (first seen on Hugging Face, say)."""
    query = (
        sa.select(sa.func.count())
        .select_from(TrendScore)
        .join(Paper, Paper.id == TrendScore.paper_id)
        .where(TrendScore.run_id == run_id, Paper.primary_category.is_(None))
    )
    return session.scalar(query) or 0
