"""Scoring runs: rank every recent paper in bulk, store the ranking, and read it back.

A run reads the signal time series with one aggregate query (one row per paper and metric, never
one query per paper) and the papers with another, scores each paper with the pure formula in
:mod:`.score`, and writes a :class:`ScoringRun` with one ranked :class:`TrendScore` per paper.
A run ranks by one velocity window; :func:`score_windows` writes a run for each of ``WINDOWS``.
Digests pin a run of their own window, so every digest of a period reads the same ranking however
often scoring runs afterwards.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from papermail import clock
from papermail.db.models import Digest, Paper, ScoringRun, SignalSnapshot, TrendScore
from papermail.db.types import UTCDateTime
from papermail.trending.score import (
    MetricAggregate,
    PaperSignals,
    ScoredPaper,
    TrendParams,
    rank,
    score_paper,
)
from papermail.trending.windows import DEFAULT_WINDOW, WINDOWS

if TYPE_CHECKING:
    from papermail.config import Settings

# Rows per round trip when streaming the series: few round trips, and memory for a few batches.
FETCH_BATCH_ROWS = 10_000
READ_AHEAD_BATCHES = 2
T = TypeVar("T")
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
    as_of = as_of or clock.now()
    return [
        score_papers(
            session,
            TrendParams.from_settings(settings, window),
            keep_runs=settings.trend_keep_runs,
            as_of=as_of,
        )
        for window in WINDOWS
    ]


def score_papers(
    session: Session, params: TrendParams, *, keep_runs: int, as_of: datetime | None = None
) -> RunSummary:
    """Rank every paper born within ``params.max_age`` of ``as_of`` (default now) as a new run.

    Keeps the newest ``keep_runs`` runs of each window and every run a digest pinned; older ones are
    deleted.
    """
    as_of = as_of or clock.now()
    # The run row is written first: on SQLite this takes the write lock before the long read, so a
    # fetch committing meanwhile cannot invalidate our snapshot and fail the run at its first write.
    run = ScoringRun(as_of=as_of, window=params.window_name, params=params.as_json())
    session.add(run)
    session.flush()
    with _cyclic_gc_paused():
        ranked = rank(score_paper(paper, params) for paper in read_paper_signals(session, params, as_of))
        _insert_scores(session, run.id, ranked)
    run.paper_count = len(ranked)
    run.finished_at = clock.now()
    session.flush()
    pruned = prune_runs(session, keep_runs)
    return RunSummary(run.id, as_of, len(ranked), pruned, run.window)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a run builds a few hundred thousand small objects.

    They form no reference cycles, so reference counting frees them all the same; but every full
    collection walks all of them again, which measured a fifth of a run's CPU time.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# -- reading the signals ---------------------------------------------------------------------------


def read_paper_signals(session: Session, params: TrendParams, as_of: datetime) -> Iterator[PaperSignals]:
    """Every paper in the horizon with its aggregated signals, in paper id order."""
    connection = session.connection()
    papers = list(itertools.chain.from_iterable(_batches(connection, _papers_query(params, as_of))))
    batches = _batches(connection, _series_query(params, as_of))
    if connection.dialect.name == "postgresql":
        # The server aggregates the next batch while Python scores this one. (Not on SQLite: its
        # rows are computed inside this process, handing the GIL to and fro for every row.)
        batches = _read_ahead(batches)
    series = itertools.chain.from_iterable(batches)
    # Both results are ordered by paper id: merge them, giving each paper its series rows. The
    # series become NamedTuples rather than staying rows: a Row's attribute access is ~15x slower.
    make_aggregate = MetricAggregate._make
    row = next(series, None)
    for paper_id, arxiv_id, age_hours, age_known in papers:
        metrics = []
        while row is not None and row[0] <= paper_id:
            if row[0] == paper_id:  # a smaller id is a paper outside the horizon
                metrics.append(make_aggregate(row[1:]))
            row = next(series, None)
        yield PaperSignals(paper_id, arxiv_id, age_hours, tuple(metrics), bool(age_known))


def _batches(connection: sa.Connection, query: sa.Select) -> Iterator[Sequence[Any]]:
    """The query's rows, a batch at a time, streamed where the backend can.

    On PostgreSQL they come from a server-side cursor of the driver itself, as plain tuples:
    building SQLAlchemy rows would cost more than the rest of the read, and these queries need no
    type processing (their parameters are aware datetimes and names, which psycopg binds as
    SQLAlchemy would; their columns are ids, counts, hours and names).
    """
    if connection.dialect.name != "postgresql":
        yield from connection.execute(query).partitions(FETCH_BATCH_ROWS)
        return
    compiled = query.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    name = f"trending_{next(_cursor_numbers)}"
    with connection.connection.driver_connection.cursor(name=name) as cursor:
        cursor.execute(str(compiled), compiled.params)
        while batch := cursor.fetchmany(FETCH_BATCH_ROWS):
            yield batch


_cursor_numbers = itertools.count()


def _read_ahead(batches: Iterator[T]) -> Iterator[T]:
    """Yield ``batches`` as a worker thread fetches them, up to READ_AHEAD_BATCHES ahead.

    The thread alone uses the connection until the batches run out or the consumer stops, and
    it is stopped and joined before this generator finishes, so the connection is free again.
    """
    ready: queue.Queue = queue.Queue(maxsize=READ_AHEAD_BATCHES)
    stop = threading.Event()

    def fetch() -> None:
        try:
            for batch in batches:
                if stop.is_set():
                    break
                ready.put(batch)
        except BaseException as exc:  # re-raised in the consumer's thread
            ready.put(_Failed(exc))
        finally:
            with contextlib.suppress(AttributeError):
                batches.close()  # a generator's cursor is closed in the thread that used it
            ready.put(_DONE)

    worker = threading.Thread(target=fetch, name="trending-read-ahead", daemon=True)
    worker.start()
    try:
        while (item := ready.get()) is not _DONE:
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a put() on a full queue, then wait for the thread
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.1)
        worker.join()


@dataclass(frozen=True, slots=True)
class _Failed:
    exc: BaseException


_DONE = object()


class HoursBetween(FunctionElement[float]):
    """``later - earlier`` in hours, as a float, exact to the microsecond on both backends."""

    type = sa.Float()
    inherit_cache = True


@compiles(HoursBetween, "postgresql")
def _hours_between_postgresql(element: HoursBetween, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(EXTRACT(EPOCH FROM ({later} - {earlier})) / 3600 AS DOUBLE PRECISION)"


@compiles(HoursBetween, "sqlite")
def _hours_between_sqlite(element: HoursBetween, compiler: SQLCompiler, **kw: Any) -> str:
    # Times are stored as 'YYYY-MM-DD HH:MM:SS.ffffff'. SQLite's date functions round to the
    # millisecond, so: whole seconds of the first 19 characters, plus the fractions after them.
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return (
        f"((strftime('%s', substr({later}, 1, 19)) - strftime('%s', substr({earlier}, 1, 19)))"
        f" + (CAST(substr({later}, 20) AS REAL) - CAST(substr({earlier}, 20) AS REAL))) / 3600.0"
    )


def _born_at() -> sa.ColumnElement[datetime]:
    # arXiv's publication time when known. Otherwise the start of its id's month, the earliest it
    # can be: a replacement of a 2019 paper must not rank as new while its date is being looked up.
    # (First seen only for an id without a date in it, which arXiv does not issue.)
    return sa.func.coalesce(Paper.published_at, Paper.id_month, Paper.first_seen_at)


def _in_horizon(params: TrendParams, as_of: datetime) -> sa.ColumnElement[bool]:
    return _born_at() >= as_of - params.max_age


def _papers_query(params: TrendParams, as_of: datetime) -> sa.Select:
    """(paper id, arXiv id, age in hours, whether it is known) of every paper in the horizon, by id."""
    age_hours = HoursBetween(sa.literal(as_of, UTCDateTime()), _born_at())
    known = Paper.published_at.is_not(None)
    return (
        sa.select(Paper.id, Paper.arxiv_id, age_hours, known)
        .where(_in_horizon(params, as_of))
        .order_by(Paper.id)
    )


def _series_query(params: TrendParams, as_of: datetime) -> sa.Select:
    """(paper id, *MetricAggregate) per series of the papers in the horizon.

    In paper id order, and for each paper in :attr:`TrendParams.metrics` order.

    The grouping reads ``ix_signal_snapshots_paper_id_metric_observed_at_value`` in order: the index
    covers the query, so neither backend touches or sorts the table itself.
    """
    s = SignalSnapshot
    at_start = sa.func.max(s.value).filter(s.observed_at <= as_of - params.window)
    grouped = (
        sa.select(
            s.paper_id,
            s.metric,
            sa.func.max(s.value).label("total"),
            at_start.label("at_window_start"),
            # Only a series with nothing before the window needs its first observation.
            sa.case((at_start.is_(None), sa.func.min(s.observed_at))).label("first_at"),
        )
        .where(
            s.observed_at <= as_of,
            s.metric.in_(params.metrics),
            # From the horizon's smallest paper id on: one range of the index rather than a join
            # or a lookup per paper. Papers outside the horizon in that range are dropped by the
            # merge with the papers query.
            s.paper_id
            >= sa.select(sa.func.min(Paper.id)).where(_in_horizon(params, as_of)).scalar_subquery(),
        )
        .group_by(s.paper_id, s.metric)
        .subquery("series")
    )
    display_order = {metric: position for position, metric in enumerate(params.metrics)}
    first = aliased(SignalSnapshot, name="first_obs")
    first_value = (  # one index lookup, only for the series that start inside the window
        sa.select(sa.func.max(first.value))
        .where(
            first.paper_id == grouped.c.paper_id,
            first.metric == grouped.c.metric,
            first.observed_at == grouped.c.first_at,
        )
        .scalar_subquery()
    )
    return sa.select(
        grouped.c.paper_id,
        grouped.c.metric,
        grouped.c.total,
        grouped.c.at_window_start,
        HoursBetween(sa.literal(as_of, UTCDateTime()), grouped.c.first_at),
        sa.case((grouped.c.first_at.is_not(None), first_value)),
    ).order_by(grouped.c.paper_id, sa.case(display_order, value=grouped.c.metric))


# -- writing and pruning runs ----------------------------------------------------------------------


def _insert_scores(session: Session, run_id: int, ranked: Sequence[ScoredPaper]) -> None:
    if not ranked:
        return
    rows = ((run_id, s.paper_id, i, s.score, s.evidence) for i, s in enumerate(ranked, start=1))
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
    """Papers listed in any of ``topics`` (arXiv categories, cross-lists included)."""
    # ``categories`` is a JSON list of strings. Matching the JSON-encoded name, quotes included, is
    # exact ("cs.LG" never matches "cs.LGX") and works on SQLite's and PostgreSQL's JSON alike.
    as_text = sa.cast(Paper.categories, sa.Text)
    return sa.or_(
        sa.false(), *(as_text.like(f"%{_escape_like(json.dumps(t))}%", escape="\\") for t in topics)
    )


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
