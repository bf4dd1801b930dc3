"""Scoring benchmark: a full trending rescoring of 100,000 papers with 2,000,000 signal snapshots.

    .venv/bin/python benchmarks/scoring.py             # SQLite and PostgreSQL, ~3 minutes
    .venv/bin/python benchmarks/scoring.py --quick     # 10,000 papers / 200,000 snapshots
    .venv/bin/python benchmarks/scoring.py --signals   # 5 metrics a paper against today's code and data

A full rescoring ranks every window digests need (24h and 7d, ``score_windows``: one read of the
signals, a run per window). Beside it, in the same process kind and on the same data, it times the
one-window rescoring (``score_papers`` for 24h, what a rescoring was before windows) and prints the
ratio.

For each backend it loads the papers, then the snapshots in two halves (every other observation of
each series first, so the first half is the same history observed half as often). After each half
it times full rescorings, each in a fresh process: wall seconds, the process's CPU seconds, and how
much its peak resident memory grew. Memory should not grow between the two sizes: the snapshots
are aggregated in SQL, and only one row per paper and metric reaches Python. The baseline, measured in
the same
run on the same database, is the naive loop (one query per paper, aggregated in Python) over
``--naive-papers`` papers, extrapolated per paper to the full set and reported as a ratio. The load
average is printed beside each result: the machine is shared, and a busy neighbour shows there.

With ``--signals`` it measures what the community sources cost instead: today's figure (the code
of ``--baseline-commit``, exported with ``git archive``, ranking both windows of today's data: upvotes,
comments and, for half the papers, GitHub stars) side by side with this code ranking both windows of
the same number of papers and snapshots spread over five metrics per paper (upvotes, GitHub stars,
Hacker News points, Bluesky likes, citations). Runs alternate between the two, each in a fresh
process, and the ratio of the medians is printed against its target (1.3x).

PostgreSQL runs in its own database on 127.0.0.1:5432 (user postgres, trust auth), created and
dropped here; SQLite in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import sqlalchemy as sa

REPO_ROOT = Path(__file__).resolve().parents[1]
# A child measuring the baseline code imports papermail from its exported copy instead.
sys.path.insert(0, os.environ.get("PAPERMAIL_BENCH_SRC") or str(REPO_ROOT / "src"))

import papermail  # noqa: E402
from papermail import config  # noqa: E402
from papermail.db import migrate, session_scope  # noqa: E402
from papermail.db.models import Paper, ScoringRun, SignalSnapshot  # noqa: E402
from papermail.db.session import dispose_engines  # noqa: E402
from papermail.trending import WINDOWS, TrendParams, runs  # noqa: E402

PG_ADMIN_DSN = os.environ.get("PAPERMAIL_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
AS_OF = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
SEED = 4
COLD_SHARE = 0.2  # papers with no signals yet (brand-new arXiv listings)
CATEGORIES = ("cs.AI", "cs.CL", "cs.CV", "cs.LG", "cs.RO", "cs.IR", "stat.ML", "cs.NE", "cs.CR", "eess.IV")
# Every paper is inside the default 30-day horizon, so a run ranks all of them.
SPAN_MINUTES = 30 * 24 * 60 - 60
FIRST_MINUTE = AS_OF - timedelta(minutes=SPAN_MINUTES)
KEEP_RUNS = 2  # the benchmark only needs the run it just wrote; keeps the tables small
TARGET_SECONDS = {"postgresql": 2.0, "sqlite": 10.0}  # both windows
TARGET_SIZE = (100_000, 2_000_000)  # papers, snapshots
SIGNAL_METRICS = ("upvotes", "github_stars", "hn_points", "bluesky_likes", "citations")
SIGNALS_TARGET_RATIO = 1.3
BASELINE_COMMIT = "8ea764d"  # the code before the community sources


# -- the data -------------------------------------------------------------------------------------


def generate(
    papers: int, snapshots: int, metrics: tuple[str, ...] | None = None
) -> tuple[list[tuple], list[list[tuple]]]:
    """Deterministic papers, and snapshot rows as two halves: every other observation of each series.

    Snapshot times are whole minutes (as the fetcher stores them), given as minutes after
    FIRST_MINUTE; the loaders turn them into each backend's format through a lookup table.
    """
    rng = random.Random(SEED)
    with_signals = round(papers * (1 - COLD_SHARE))
    per_paper = max(2, snapshots // max(1, with_signals))
    paper_rows, halves = [], ([], [])
    for paper_id in range(1, papers + 1):
        signals = paper_id <= with_signals
        born_minute = (
            rng.uniform(0, SPAN_MINUTES - 60) if signals else rng.uniform(SPAN_MINUTES - 4320, SPAN_MINUTES)
        )
        cats = rng.sample(CATEGORIES, rng.randint(1, 3))
        born = FIRST_MINUTE + timedelta(minutes=born_minute)
        paper_rows.append((paper_id, f"2611.{paper_id:06d}", f"Benchmark paper {paper_id}", cats, born))
        if signals:
            series = _series(rng, paper_id, int(born_minute) + 1, per_paper, metrics)
            for index, row in enumerate(series):
                halves[index % 2].append(row)
    return paper_rows, list(halves)


def _series(
    rng: random.Random, paper_id: int, first_minute: int, count: int, metrics: tuple[str, ...] | None = None
) -> list[tuple]:
    has_code = rng.random() < 0.5
    upvotes, comments = count * 4 // 10, count * 3 // 10
    stars = count - upvotes - comments
    # Half the papers have code; the others' share of observations goes to upvotes.
    split = {"upvotes": upvotes + (0 if has_code else stars), "comments": comments}
    if has_code:
        split["github_stars"] = stars
    if metrics:  # the same observations, spread evenly over every metric
        split = {
            metric: count // len(metrics) + (n < count % len(metrics)) for n, metric in enumerate(metrics)
        }
    rows = []
    for metric, n in split.items():
        value = int(rng.random() * 6)
        # Sparse, irregular times between the paper's birth and as_of; now and then a retraction.
        for minute in sorted(rng.sample(range(first_minute, SPAN_MINUTES + 1), n)):
            step = rng.random()
            value = max(0, value - 1) if step < 0.02 else value + int(step * 31)
            rows.append((paper_id, metric, value, minute))
    return rows


def sqlite_text(at: datetime) -> str:
    """A time as SQLAlchemy stores it on SQLite (naive UTC, microseconds), for raw bulk loading."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _minute_texts(fmt) -> list[str]:
    return [fmt(FIRST_MINUTE + timedelta(minutes=m)) for m in range(SPAN_MINUTES + 1)]


PAPER_COLUMNS = (
    "id, arxiv_id, version, title, abstract, authors, primary_category, categories,"
    " published_at, on_huggingface, first_seen_at, last_seen_at"
)
SNAPSHOT_COLUMNS = "paper_id, source, metric, value, observed_at"


def load_papers(url: str, paper_rows: list[tuple]) -> None:
    if url.startswith("sqlite"):
        with _sqlite(url) as conn:
            conn.executemany(
                f"INSERT INTO papers ({PAPER_COLUMNS}) VALUES (?, ?, 1, ?, '', '[]', ?, ?, ?, 1, ?, ?)",  # noqa: S608
                [
                    (pid, aid, title, cats[0], json.dumps(cats), t, t, t)
                    for pid, aid, title, cats, born in paper_rows
                    for t in [sqlite_text(born)]
                ],
            )
        return
    with _pg(url) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY papers ({PAPER_COLUMNS}) FROM STDIN") as copy:
            for pid, aid, title, cats, born in paper_rows:
                copy.write_row(
                    (pid, aid, 1, title, "", "[]", cats[0], json.dumps(cats), born, True, born, born)
                )
        cur.execute("SELECT setval('papers_id_seq', (SELECT max(id) FROM papers))")


def load_snapshots(url: str, rows: list[tuple]) -> None:
    """Append snapshot rows, with the secondary indexes rebuilt afterwards (much faster than live)."""
    if url.startswith("sqlite"):
        times = _minute_texts(sqlite_text)
        with _sqlite(url) as conn, _indexes_rebuilt(conn, SQLITE_INDEXES):
            conn.executemany(
                f"INSERT INTO signal_snapshots ({SNAPSHOT_COLUMNS}) VALUES (?, 'huggingface', ?, ?, ?)",  # noqa: S608
                [(p, m, v, times[minute]) for p, m, v, minute in rows],
            )
        with _sqlite(url) as conn:
            conn.execute("ANALYZE")
        return
    times = _minute_texts(lambda at: f"{at:%Y-%m-%d %H:%M:%S}+00")
    with _pg(url) as conn, conn.cursor() as cur, _indexes_rebuilt(cur, POSTGRESQL_INDEXES):
        # The rows are valid by construction: skip the per-row foreign key triggers while loading.
        cur.execute("SET LOCAL session_replication_role = replica")
        with cur.copy(f"COPY signal_snapshots ({SNAPSHOT_COLUMNS}) FROM STDIN") as copy:
            for p, m, v, minute in rows:
                copy.write_row((p, "huggingface", m, v, times[minute]))
    with _pg(url, autocommit=True) as conn:
        # What autovacuum does soon after a load: statistics, and the visibility map that lets the
        # scoring query read the covering index without visiting the table.
        conn.execute("VACUUM ANALYZE")


# (name, CREATE INDEX statement) of the snapshots' indexes that back no constraint.
SQLITE_INDEXES = (
    "SELECT name, sql FROM sqlite_master"
    " WHERE type = 'index' AND tbl_name = 'signal_snapshots' AND sql IS NOT NULL"
)
POSTGRESQL_INDEXES = (
    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'signal_snapshots'"
    " AND indexname NOT IN (SELECT conname FROM pg_constraint)"
)


@contextmanager
def _indexes_rebuilt(db, listing_sql: str) -> Iterator[None]:
    """Drop the indexes ``listing_sql`` names and create them again on the way out."""
    indexes = db.execute(listing_sql).fetchall()
    for name, _ in indexes:
        db.execute(f'DROP INDEX "{name}"')
    yield
    for _, create in indexes:
        db.execute(create)


@contextmanager
def _sqlite(url: str) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("BEGIN")
    try:
        yield conn
        conn.execute("COMMIT")
    finally:
        conn.close()


def _pg(url: str, autocommit: bool = False) -> psycopg.Connection:
    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=autocommit)


# -- the measurements (each in a fresh subprocess) ------------------------------------------------


def child_settings(url: str) -> config.Settings:
    data_dir = Path(tempfile.gettempdir()) / "papermail-bench"
    return config.load_settings(
        {"PAPERMAIL_DATA_DIR": str(data_dir), "PAPERMAIL_SECRET_KEY": "bench", "PAPERMAIL_DATABASE_URL": url}
    )


def measure_bulk(url: str, mode: str) -> dict:
    """One full rescoring (``windows``: both; ``one``: 24h only): wall and CPU seconds, peak memory growth."""
    settings = child_settings(url)
    with session_scope(settings) as session:  # connect and import everything first
        server_pid = session.scalar(sa.text("SELECT pg_backend_pid()")) if "postgresql" in url else None
    baseline, server_cpu = peak_rss_mb(), process_cpu_seconds(server_pid)
    started, cpu = time.perf_counter(), time.process_time()
    with session_scope(settings) as session:  # the pool hands back the same connection
        if mode == "windows":
            summaries = runs.score_runs(session, window_params(settings), keep_runs=KEEP_RUNS, as_of=AS_OF)
        else:
            summaries = [
                runs.score_papers(session, window_params(settings)[0], keep_runs=KEEP_RUNS, as_of=AS_OF)
            ]
    summary = summaries[0]
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
        "server_cpu_seconds": process_cpu_seconds(server_pid) - server_cpu,
        "papers": summary.paper_count,
        "rss_growth_mb": peak_rss_mb() - baseline,
        "src": str(Path(papermail.__file__).resolve().parents[1]),  # which code ran
    }


def window_params(settings: config.Settings) -> list[TrendParams]:
    return [TrendParams.from_settings(settings, window) for window in WINDOWS]


def process_cpu_seconds(pid: int | None) -> float:
    """User plus system CPU time of another process on this machine (the PostgreSQL backend)."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux VmHWM).

    Not getrusage's ru_maxrss: Linux carries that across exec, so a child forked from this large
    parent would report the parent's peak.
    """
    with open("/proc/self/status") as status:
        kb = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    return int(kb) / 1024


def measure_naive(url: str, papers: int) -> dict:
    """The naive loop: one query per paper, aggregated and scored in Python, then the same insert."""
    # Imported here, not at the top: a --signals child imports this file over older code, whose
    # trending package had no series module.
    from papermail.trending.score import rank, score_paper
    from papermail.trending.series import paper_signals

    settings = child_settings(url)
    params = window_params(settings)[0]
    with session_scope(settings) as session:
        session.execute(sa.select(1))
    started = time.perf_counter()
    with session_scope(settings) as session:
        born = sa.func.coalesce(Paper.published_at, Paper.first_seen_at)
        chosen = session.execute(
            sa.select(Paper.id, Paper.arxiv_id, born)
            .where(born >= AS_OF - params.max_age)
            .order_by(Paper.id)
            .limit(papers)
        ).all()
        scored = []
        for paper_id, arxiv_id, born_at in chosen:
            series = defaultdict(list)
            snapshots = sa.select(SignalSnapshot.metric, SignalSnapshot.observed_at, SignalSnapshot.value)
            for metric, at, value in session.execute(snapshots.where(SignalSnapshot.paper_id == paper_id)):
                series[metric].append((at, value))
            scored.append(
                score_paper(paper_signals(paper_id, arxiv_id, born_at, series, AS_OF, params), params)
            )
        run = ScoringRun(as_of=AS_OF, params=params.as_json())
        session.add(run)
        session.flush()
        runs._insert_scores(session, run.id, rank(scored))
        session.rollback()
    return {"seconds": time.perf_counter() - started, "papers": len(chosen)}


def run_child(*args: str, src: str | None = None) -> dict:
    env = {**os.environ, "PAPERMAIL_BENCH_SRC": src} if src else None
    child = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env
    )
    if child.returncode != 0:
        raise SystemExit(f"measurement {' '.join(args)} failed:\n{child.stderr}")
    return json.loads(child.stdout.strip().splitlines()[-1])


# -- orchestration --------------------------------------------------------------------------------


def bench_backend(backend: str, args: argparse.Namespace, data: tuple[list, list]) -> dict:
    paper_rows, halves = data
    url, drop = create_database(backend)
    try:
        migrate.upgrade(child_settings(url))
        load_papers(url, paper_rows)
        sizes, loaded = [], 0
        for half, repeat in zip(halves, (args.repeat_half, args.repeat), strict=True):
            started = time.perf_counter()
            load_snapshots(url, half)
            loaded += len(half)
            log(f"{backend}: loaded {loaded:,} snapshots in {time.perf_counter() - started:.1f} s")
            # Interleaved, so a busy neighbour slows both kinds alike.
            measured, one_window = [], []
            for _ in range(repeat):
                measured.append(run_child("bulk", url, "windows"))
                one_window.append(run_child("bulk", url, "one"))
            sizes.append(
                {"snapshots": loaded, "runs": measured, "one_window": one_window, "load": os.getloadavg()[0]}
            )
            timings = ", ".join(f"{m['seconds']:.2f}" for m in measured)
            baseline = ", ".join(f"{m['seconds']:.2f}" for m in one_window)
            log(f"{backend}: rescoring both windows took {timings} s (one window: {baseline} s)")
        naive = run_child("naive", url, str(args.naive_papers))
        return {"backend": backend, "sizes": sizes, "naive": naive}
    finally:
        drop()


def create_database(backend: str, suffix: str = ""):
    if backend == "sqlite":
        tmp = tempfile.TemporaryDirectory(prefix="papermail-bench-")
        return f"sqlite:///{tmp.name}/bench.db", tmp.cleanup
    name = f"papermail_bench_{os.getpid()}{suffix}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        dispose_engines()
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    info = psycopg.conninfo.conninfo_to_dict(PG_ADMIN_DSN)
    host, port, user = info.get("host", "127.0.0.1"), info.get("port", "5432"), info.get("user", "postgres")
    return f"postgresql+psycopg://{user}@{host}:{port}/{name}", drop


def report(results: list[dict], papers: int, snapshots: int) -> None:
    print(
        f"\nfull trending rescoring of {papers:,} papers, both windows (24h and 7d), "
        "each run a fresh process; median of the runs\n"
    )
    header = (
        f"{'backend':<11}{'snapshots':>11}{'runs':>5}{'seconds':>9}{'min-max':>13}"
        f"{'CPU s':>7}{'server CPU s':>14}{'peak RSS +MB':>14}{'load avg':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        for size in r["sizes"]:
            seconds = [m["seconds"] for m in size["runs"]]
            cpu = statistics.median(m["cpu_seconds"] for m in size["runs"])
            server_cpu = f"{statistics.median(m['server_cpu_seconds'] for m in size['runs']):.2f}"
            rss = max(m["rss_growth_mb"] for m in size["runs"])
            print(
                f"{r['backend']:<11}{size['snapshots']:>11,}{len(seconds):>5}{statistics.median(seconds):>9.2f}"
                f"{f'{min(seconds):.2f}-{max(seconds):.2f}':>13}{cpu:>7.2f}"
                f"{server_cpu if r['backend'] == 'postgresql' else '-':>14}{rss:>14.1f}{size['load']:>10.1f}"
            )
    print("\nbaseline 1: one window (24h) only, as before windows, same data, interleaved runs\n")
    for r in results:
        for size in r["sizes"]:
            both = statistics.median(m["seconds"] for m in size["runs"])
            one = statistics.median(m["seconds"] for m in size["one_window"])
            print(
                f"{r['backend']:<11}{size['snapshots']:>11,} snapshots: both windows {both:.2f} s, "
                f"one window {one:.2f} s: {both / one:.2f}x"
            )
    print("\nbaseline 2: the naive loop, one query per paper, on the same database (all snapshots)\n")
    for r in results:
        naive, full = r["naive"], r["sizes"][-1]
        per_paper = naive["seconds"] / naive["papers"]
        extrapolated = per_paper * full["runs"][0]["papers"]
        bulk = statistics.median(m["seconds"] for m in full["runs"])
        print(
            f"{r['backend']:<11}{naive['papers']:,} papers in {naive['seconds']:.2f} s = "
            f"{per_paper * 1000:.2f} ms/paper, so {extrapolated:.0f} s for {full['runs'][0]['papers']:,}: "
            f"the bulk run is {extrapolated / bulk:.1f}x faster"
        )
    print()
    if (papers, snapshots) != TARGET_SIZE:
        print("(the targets are for 100,000 papers and 2,000,000 snapshots: run without --quick)")
        return
    for r in results:
        bulk = statistics.median(m["seconds"] for m in r["sizes"][-1]["runs"])
        target = TARGET_SECONDS[r["backend"]]
        print(f"target {r['backend']}: {bulk:.2f} s < {target:.0f} s: {'met' if bulk < target else 'MISSED'}")


# -- --signals: five metrics a paper against today's code and data --------------------------------


@contextmanager
def exported_source(commit: str) -> Iterator[str]:
    """The package's ``src`` at ``commit``, exported into a temporary directory (no checkout)."""
    with tempfile.TemporaryDirectory(prefix="papermail-baseline-") as tmp:
        archive = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "archive", commit, "src"], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        yield str(Path(tmp) / "src")


def bench_signals(backend: str, args: argparse.Namespace, today: tuple, signals: tuple, src: str) -> dict:
    """Both windows: the baseline code on today's data, this code on five metrics a paper, alternating."""
    made = [create_database(backend, suffix) for suffix in ("_today", "_signals")]
    try:
        urls = [url for url, _drop in made]
        for url, (paper_rows, halves) in zip(urls, (today, signals), strict=True):
            migrate.upgrade(child_settings(url))
            load_papers(url, paper_rows)
            for half in halves:
                load_snapshots(url, half)
        log(f"{backend}: loaded both databases")
        baseline, measured = [], []
        for _ in range(args.repeat):
            baseline.append(run_child("bulk", urls[0], "windows", src=src))
            measured.append(run_child("bulk", urls[1], "windows"))
            today_s, signals_s = baseline[-1]["seconds"], measured[-1]["seconds"]
            log(f"{backend}: today {today_s:.2f} s ({baseline[-1]['src']}), five metrics {signals_s:.2f} s")
        return {"backend": backend, "today": baseline, "signals": measured, "load": os.getloadavg()[0]}
    finally:
        for _url, drop in made:
            drop()


def report_signals(results: list[dict], papers: int, snapshots: int) -> None:
    print(
        f"\nboth windows (24h and 7d) of {papers:,} papers and {snapshots:,} snapshots, each run a fresh "
        f"process, alternating; today = the code of {BASELINE_COMMIT} on today's data (upvotes, comments, "
        "stars for half), signals = this code on five metrics a paper\n"
    )
    for r in results:
        for measure, unit in (
            ("seconds", "wall s"),
            ("cpu_seconds", "CPU s"),
            ("server_cpu_seconds", "server CPU s"),
        ):
            if r["backend"] == "sqlite" and measure == "server_cpu_seconds":
                continue  # SQLite runs inside the process: its work is in the CPU seconds
            today = statistics.median(m[measure] for m in r["today"])
            signals = statistics.median(m[measure] for m in r["signals"])
            ratio = signals / today
            verdict = "met" if ratio <= SIGNALS_TARGET_RATIO else "MISSED"
            runs = ", ".join(
                f"{a[measure]:.2f}/{b[measure]:.2f}" for a, b in zip(r["today"], r["signals"], strict=True)
            )
            print(
                f"{r['backend']:<11} {unit:<13} today {today:.2f}, five metrics {signals:.2f}: {ratio:.2f}x "
                f"(target {SIGNALS_TARGET_RATIO}x: {verdict}) runs today/five: {runs}"
            )
        print(f"{'':<11} load average {r['load']:.1f} (the machine is shared)")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--snapshots", type=int, default=2_000_000)
    parser.add_argument("--naive-papers", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs with all snapshots loaded")
    parser.add_argument("--repeat-half", type=int, default=1, help="timed runs with half of them")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="10,000 papers, 200,000 snapshots, 1 run each")
    parser.add_argument("--signals", action="store_true", help="five metrics a paper against today's code")
    parser.add_argument("--baseline-commit", default=BASELINE_COMMIT, help="today's code, for --signals")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, url, rest = args.child[0], args.child[1], args.child[2]
        print(json.dumps(measure_naive(url, int(rest)) if kind == "naive" else measure_bulk(url, rest)))
        return
    # A SIGTERM exits normally, so the temporary files and the benchmark database are removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.quick:
        args.papers, args.snapshots, args.naive_papers, args.repeat = 10_000, 200_000, 500, 1
    started = time.perf_counter()
    data = generate(args.papers, args.snapshots)
    snapshots = sum(map(len, data[1]))
    log(
        f"generated {len(data[0]):,} papers, {snapshots:,} snapshots in {time.perf_counter() - started:.1f} s"
    )
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    if args.signals:
        signals = generate(args.papers, args.snapshots, SIGNAL_METRICS)
        with exported_source(args.baseline_commit) as src:
            results = [bench_signals(b, args, data, signals, src) for b in backends]
        report_signals(results, args.papers, snapshots)
        log(f"total {time.perf_counter() - started:.0f} s")
        return
    results = [bench_backend(b, args, data) for b in backends]
    report(results, args.papers, args.snapshots)
    log(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
