"""Fan-out benchmark: a weekly digest for 20,000 subscribers, end to end, against the naive way.

    /work/main/.venv/bin/python benchmarks/fanout.py [--quick] [--subscribers N] [--workers W]
                                                     [--concurrency C] [--baseline N] [--profile]
                                                     [--voters F] [--plan-only [--rounds R] [--against DIR]]

Everything is real: its own PostgreSQL database (created, migrated, dropped), Redis as the broker
(a private queue), ``papermail worker`` processes, and a minimal asyncio SMTP sink in its own
process (``smtp_sink.py``) that accepts and discards. 5,000 papers in a finished scoring run and
20,000 subscribers with varied topics and keywords.

* **papermail**: the planner inserts every delivery row (papers frozen per subscriber) a chunk per
  transaction, as the ``plan_due_digests`` task does (timed on its own); then the batches of ids
  are queued and the workers claim, render, build and send each batch over one SMTP connection and
  record every outcome: timed from queueing to the last row recorded sent, through the real
  queue, workers, database and SMTP, like the baseline. Plan + send is reported too.
* **baseline** (the issue's naive way): one task per message, each opening a session, rendering
  its digest, building an ``EmailMessage`` and sending it over a new SMTP connection. Same
  number of worker processes; fewer messages (its rate is extrapolated).

A fraction of the subscribers (``--voters``, 20 % by default) have votes and seed papers, so their
papers are chosen by personal relevance (docs/relevance.md). ``--plan-only`` times planning alone,
R rounds each way: everyone on trending only (mix 0, the baseline) against the seeded mix, and
prints the medians and their ratio. ``--plan-only --against DIR`` runs this tree's and another
checkout's ``--plan-only`` in turn, R rounds of fresh processes, and compares their planning rates
(target: within 5 %).

It reports digests per second, the ratio, the peak memory of each worker process (VmHWM), and
checks the sink got exactly one message per subscriber. ``--profile`` then runs ``send_batch`` in
this process under cProfile and says where a worker's time goes (with ``--plan-only``: one planning
pass with relevance).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import re
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import psycopg
import redis
import sqlalchemy as sa

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT / "src"), str(REPO_ROOT)]

from benchmarks.side_by_side import Figure, compare  # noqa: E402
from benchmarks.smtp_sink import SinkProcess, start_sink  # noqa: E402
from tests.conftest import settings_environ, shared_fixtures_dir  # noqa: E402
from tests.digest.builders import seed_texts  # noqa: E402
from tests.support.send_env import add_finished_run  # noqa: E402

from papermail import clock, config  # noqa: E402
from papermail.categories import KNOWN_CATEGORIES  # noqa: E402
from papermail.celery_app import create_celery, get_celery, reset_celery  # noqa: E402
from papermail.db import migrate, session_factory, session_scope, writer_session_factory  # noqa: E402
from papermail.db.models import (  # noqa: E402
    Delivery,
    DeliveryStatus,
    Digest,
    Paper,
    Subscriber,
    SubscriberStatus,
    Vote,
)
from papermail.db.session import dispose_engines  # noqa: E402
from papermail.delivery.plan import enqueue_sends, plan_in_chunks  # noqa: E402
from papermail.delivery.send import send_batch  # noqa: E402
from papermail.digest.render import render_deliveries  # noqa: E402
from papermail.mail.message import make_message_id  # noqa: E402

PG_ADMIN_DSN = os.environ.get("PAPERMAIL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("PAPERMAIL_TEST_REDIS", "redis://127.0.0.1:6379/0")
PERIOD = "2026-W48"
BASELINE_PERIOD = "2026-W49"
NAIVE_TASK = "benchmarks.naive_send_one"
# Topics people follow: mostly the popular ones, some from the long tail.
POPULAR = ["cs.LG", "cs.CL", "cs.CV", "cs.AI", "stat.ML", "cs.RO"]
TAIL = sorted(c for c in KNOWN_CATEGORIES if c.startswith(("cs.", "stat.", "eess.")) and c not in POPULAR)
KEYWORDS = ["diffusion", "transformer", "reinforcement learning", "robot", "graph", "benchmark", "agents"]
TIMEZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney"]


def main() -> None:
    args = parse_args()
    if args.plan_only and args.against:
        sys.exit(compare_planning_with(args.against, args.subscribers, args.rounds))
    rng = random.Random(48)
    database = f"pm_bench_{uuid.uuid4().hex[:8]}"
    workdir = Path(tempfile.mkdtemp(prefix="papermail-fanout-"))
    sink = start_sink()
    environ = bench_environ(args, database, workdir, sink.url)
    settings = config.load_settings(environ)
    config.use_settings(settings)
    reset_celery()
    create_database(database)
    try:
        migrate.upgrade(settings)
        started = time.perf_counter()
        seed(settings, args.subscribers, args.papers, rng)
        voters = seed_votes(settings, args.voters, rng)
        print(
            f"seeded {args.papers} papers and {args.subscribers} subscribers ({voters} with votes)"
            f" in {lap(started):.1f} s"
        )
        if args.plan_only:
            compare_planning(settings, args.rounds, args.subscribers)
            if args.profile:
                profile_planning(settings)
            return
        fast = run_papermail(args, settings, environ, sink, workdir)
        report("papermail", fast)
        if args.baseline:
            slow = run_baseline(args, settings, environ, sink, workdir)
            report("baseline", slow)
            print(
                f"\nratio: papermail {fast['rate']:.0f} digests/s vs baseline {slow['rate']:.1f} digests/s"
                f" = {fast['rate'] / slow['rate']:.1f}x  (target: >= 250/s and >= 5x)"
            )
        if args.profile:
            profile_worker(settings, min(args.subscribers, 2000))
    finally:
        sink.stop()
        redis.Redis.from_url(REDIS_URL).delete(
            settings.celery_queue, f"papermail:{settings.celery_queue}:send-rate"
        )
        dispose_engines()
        drop_database(database)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2,000 subscribers, 500 papers: a smoke run")
    parser.add_argument("--subscribers", type=int, help="default 20,000 (2,000 with --quick)")
    parser.add_argument("--papers", type=int, help="default 5,000 (500 with --quick)")
    parser.add_argument("--workers", type=int, default=2, help="papermail worker processes")
    parser.add_argument("--concurrency", type=int, default=4, help="pool processes per worker")
    parser.add_argument("--batch", type=int, default=100, help="deliveries per send task")
    parser.add_argument(
        "--baseline", type=int, help="messages the naive way: default 1,000 (300 with --quick)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="profile send_batch (with --plan-only: planning)"
    )
    parser.add_argument("--voters", type=float, default=0.2, help="fraction of subscribers with votes")
    parser.add_argument("--plan-only", action="store_true", help="time planning: trending only vs relevance")
    parser.add_argument("--rounds", type=int, default=3, help="--plan-only rounds each way (medians)")
    parser.add_argument(
        "--against", type=Path, help="with --plan-only: another checkout's planning, side by side (R rounds)"
    )
    args = parser.parse_args()
    quick = {"subscribers": 2_000, "papers": 500, "baseline": 300}
    full = {"subscribers": 20_000, "papers": 5_000, "baseline": 1_000}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def lap(since: float) -> float:
    return time.perf_counter() - since


# -- the database ---------------------------------------------------------------------------------


def create_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url(name: str) -> str:
    url = sa.engine.make_url(PG_ADMIN_DSN).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False)


def bench_environ(args: argparse.Namespace, database: str, workdir: Path, mail_url: str) -> dict[str, str]:
    return settings_environ(
        workdir,
        database_url=database_url(database),
        broker_url=REDIS_URL,
        mail_url=mail_url,
        celery_queue=f"papermail-bench-{uuid.uuid4().hex[:8]}",
        send_batch_size=str(args.batch),
    )


def seed(settings: config.Settings, subscribers: int, papers: int, rng: random.Random) -> None:
    """Papers with real titles and abstracts, one finished scoring run, and varied subscribers."""
    texts = seed_texts(shared_fixtures_dir())
    now = clock.now()
    with session_scope(settings) as session:
        paper_rows = []
        for n in range(papers):
            title, abstract = texts[n % len(texts)]
            primary = rng.choice(POPULAR) if rng.random() < 0.7 else rng.choice(TAIL)
            paper_rows.append(
                {
                    "arxiv_id": f"2611.{n:05d}",
                    "title": title if n < len(texts) else f"{title} ({n})",
                    "abstract": abstract,
                    "authors": [f"Author {n}-{a}" for a in range(1 + n % 7)],
                    "primary_category": primary,
                    "categories": sorted({primary, rng.choice(POPULAR + TAIL)}),
                    "github_url": f"https://github.com/example/repo{n}" if n % 3 == 0 else None,
                    "on_huggingface": n % 2 == 0,
                    "first_seen_at": now,
                    "last_seen_at": now,
                }
            )
        paper_ids = list(session.scalars(sa.insert(Paper).returning(Paper.id), paper_rows))
        add_finished_run(
            session,
            paper_ids,
            now,
            score=lambda rank: 1000.0 / rank,
            evidence=lambda _rank: f"+{rng.randint(1, 300)} upvotes / 24h · {rng.randint(0, 5000)}★",
        )
        subscriber_rows = []
        for n in range(subscribers):
            topics = sorted(
                {rng.choice(POPULAR) for _ in range(rng.randint(1, 2))} | set(rng.sample(TAIL, n % 2))
            )
            subscriber_rows.append(
                {
                    "email": f"reader{n}@example.org",
                    "status": SubscriberStatus.ACTIVE,
                    "topics": topics,
                    "keywords": rng.sample(KEYWORDS, 1) if n % 5 == 0 else [],
                    "send_weekday": n % 7,
                    "send_hour": n % 24,
                    "timezone": TIMEZONES[n % len(TIMEZONES)],
                    "created_at": now,
                    "confirmed_at": now,
                }
            )
        session.execute(sa.insert(Subscriber), subscriber_rows)


def seed_votes(settings: config.Settings, fraction: float, rng: random.Random) -> int:
    """Votes for ``fraction`` of the subscribers: 2 to 10 each, mostly likes, on the leading papers."""
    now = clock.now()
    with session_scope(settings) as session:
        ids = list(session.scalars(sa.select(Subscriber.id).order_by(Subscriber.id)))
        arxiv_ids = list(session.scalars(sa.select(Paper.arxiv_id).order_by(Paper.id).limit(2000)))
        voters = rng.sample(ids, int(len(ids) * fraction))
        rows = [
            {
                "subscriber_id": subscriber_id,
                "arxiv_id": arxiv_id,
                "value": 1 if rng.random() < 0.7 else -1,
                "source": "digest",
                "created_at": now,
                "updated_at": now,
            }
            for subscriber_id in voters
            for arxiv_id in rng.sample(arxiv_ids, rng.randint(2, 10))
        ]
        if rows:
            session.execute(sa.insert(Vote), rows)
    return len(voters)


def time_planning(settings: config.Settings, mix: int | None) -> float:
    """Seconds to plan PERIOD for everyone (mix 0 for all when ``mix`` is 0); the rows are then dropped."""
    with session_scope(settings) as session:
        session.execute(sa.update(Subscriber).values(relevance_mix=2 if mix is None else mix))
    vacuum(settings)
    started = time.perf_counter()
    with writer_session_factory(settings)() as session:
        for _ in plan_in_chunks(session, settings, now=clock.now(), period_key=PERIOD):
            pass
        session.commit()
    elapsed = lap(started)
    with session_scope(settings) as session:
        rows = session.scalar(sa.select(sa.func.count()).where(Delivery.period_key == PERIOD))
        reasoned = session.scalar(
            sa.select(sa.func.count()).where(Delivery.period_key == PERIOD, Delivery.reasons.is_not(None))
        )
        assert rows == session.scalar(sa.select(sa.func.count()).select_from(Subscriber)), rows
        print(f"  planned {rows} rows ({reasoned} ranked with votes) in {elapsed:.2f} s")
        session.execute(sa.delete(Delivery).where(Delivery.period_key == PERIOD))
        session.execute(sa.delete(Digest).where(Digest.period_key == PERIOD))
    return elapsed


def vacuum(settings: config.Settings) -> None:
    """What autovacuum does after bulk changes (the test server runs without it): fresh statistics
    and no dead rows, so each round starts from the same state, not from the last round's leftovers."""
    url = sa.engine.make_url(settings.database_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def compare_planning(settings: config.Settings, rounds: int, subscribers: int) -> None:
    """Planning alone, alternating trending only (baseline) and relevance; medians and their ratio."""
    started = time.perf_counter()
    import sklearn.feature_extraction.text
    import sklearn.linear_model  # noqa: F401

    print(
        f"scikit-learn import, paid once per worker process (not in the figures below): {lap(started):.1f} s"
    )
    trending, relevance = [], []
    for _ in range(rounds):
        trending.append(time_planning(settings, 0))
        relevance.append(time_planning(settings, None))
    base, mine = statistics.median(trending), statistics.median(relevance)
    print(f"planning, trending only (mix 0 for all): median {base:.2f} s = {subscribers / base:.0f}/s")
    print(f"planning, with relevance (voters at mix 2): median {mine:.2f} s = {subscribers / mine:.0f}/s")
    print(
        f"ratio: {subscribers / mine:.0f} vs {subscribers / base:.0f} subscribers/s = {base / mine:.2f}x"
        "  (target: >= 1,500 subscribers/s with relevance)"
    )


PLANNING_RATE = Figure(
    "subscribers planned a second, with relevance", re.compile(r"with relevance .* = (\d+)/s"), True
)
MAX_PLANNING_SLOWDOWN = 1.05


def compare_planning_with(other: Path, subscribers: int, rounds: int) -> int:
    """This tree's planning against ``other``'s, a fresh process each, alternating; 0 if within 5 %."""
    args = ["--plan-only", "--rounds", "1", "--subscribers", str(subscribers)]
    return compare("fanout.py", args, other, rounds, PLANNING_RATE, MAX_PLANNING_SLOWDOWN)


def profile_planning(settings: config.Settings) -> None:
    """One planning pass with relevance under a CPU-time profiler; print where its time goes."""
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    time_planning(settings, None)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)


def sent_count(settings: config.Settings, period_key: str) -> int:
    with session_scope(settings) as session:
        return session.scalar(
            sa.select(sa.func.count()).where(
                Delivery.period_key == period_key, Delivery.status == DeliveryStatus.SENT
            )
        )


def planned_count(settings: config.Settings, period_key: str) -> int:
    with session_scope(settings) as session:
        return session.scalar(
            sa.select(sa.func.count()).where(
                Delivery.period_key == period_key, Delivery.status != DeliveryStatus.SKIPPED
            )
        )


# -- worker processes -----------------------------------------------------------------------------


class Workers:
    """Worker processes started with a command line; their logs go to files in the work dir."""

    def __init__(self, argv: list[str], environ: dict[str, str], count: int, workdir: Path, name: str):
        env = {k: v for k, v in os.environ.items() if not k.startswith(config.PREFIX)}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "src"), str(REPO_ROOT)])
        env.update(environ)
        self.logs = [workdir / f"{name}-{i}.log" for i in range(count)]
        self.processes = []
        for log in self.logs:
            with log.open("wb") as out:
                self.processes.append(
                    subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
                )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not all(" ready." in log.read_text(errors="replace") for log in self.logs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                raise RuntimeError(
                    "workers did not start:\n" + "\n".join(log.read_text()[-2000:] for log in self.logs)
                )
            time.sleep(0.2)

    def cpu_seconds(self) -> float:
        """User plus system CPU of every worker process and its pool so far."""
        return sum(cpu_of(pid) for process in self.processes for pid in [process.pid, *children(process.pid)])

    def peak_memory_mb(self) -> list[float]:
        """VmHWM (peak resident set) of every pool process, in MB."""
        peaks = []
        for process in self.processes:
            for pid in children(process.pid):
                peaks.append(vm_kb(pid, "VmHWM") / 1024)
        return peaks

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return found


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int) -> float:
    """User plus system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def database_backends_cpu(database: str) -> float:
    """CPU seconds of the PostgreSQL backends serving ``database`` (their command lines name it)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if f" {database} ".encode() in (proc / "cmdline").read_bytes().replace(b"\0", b" "):
                    total += cpu_of(int(proc.name))
            except OSError:
                continue
    return total


def vm_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def wait_until_sent(settings: config.Settings, period_key: str, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while sent_count(settings, period_key) < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"only {sent_count(settings, period_key)} of {expected} sent after {timeout} s"
            )
        time.sleep(0.25)


# -- papermail ------------------------------------------------------------------------------------


def cpu_snapshot(workers: Workers, settings: config.Settings) -> dict[str, float]:
    """CPU seconds so far of the workers, the database's backends, and this process (the planner)."""
    usage = os.times()
    return {
        "workers": workers.cpu_seconds(),
        "PostgreSQL": database_backends_cpu(sa.engine.make_url(settings.database_url).database),
        "queueing and polling (this process)": usage.user + usage.system,
    }


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before[name] for name in before}


def run_papermail(args, settings, environ, sink: SinkProcess, workdir: Path) -> dict:
    sink.reset()
    argv = [
        sys.executable,
        "-m",
        "papermail",
        "worker",
        "--concurrency",
        str(args.concurrency),
        "--loglevel",
        "INFO",
    ]
    workers = Workers([*argv], {**environ}, args.workers, workdir, "worker")
    try:
        workers.wait_ready()
        # Planning first, on its own, as plan_due_digests does it (a chunk per transaction); the
        # batches are queued when it is done, so sending is timed from a planned period, as the
        # baseline's is.
        started = time.perf_counter()
        with writer_session_factory(settings)() as session:
            planned = list(plan_in_chunks(session, settings, now=clock.now(), period_key=PERIOD))
            session.commit()
        planning = lap(started)
        cpu_before = cpu_snapshot(workers, settings)
        started = time.perf_counter()
        with session_factory(settings)() as session:
            enqueue_sends(session, [i for ids in planned for i in ids], settings=settings)
            session.commit()
        expected = planned_count(settings, PERIOD)
        wait_until_sent(settings, PERIOD, expected, timeout=600)
        elapsed = lap(started)
        peaks = workers.peak_memory_mb()
        cpu = cpu_used(cpu_before, cpu_snapshot(workers, settings))
    finally:
        workers.stop()
    stats = sink.stats()
    assert stats.messages == expected and stats.duplicates == 0, stats
    return {
        "messages": expected,
        "seconds": elapsed,
        "rate": expected / elapsed,
        "planning": planning,
        "peaks": peaks,
        "sink": stats,
        "processes": args.workers * args.concurrency,
        "cpu": cpu,
    }


# -- the naive baseline ---------------------------------------------------------------------------


def naive_send_one(delivery_id: int) -> None:
    """One digest the naive way: its own session, render, EmailMessage and SMTP connection."""
    settings = config.get_settings()
    with session_scope(settings) as session:
        delivery = session.get(Delivery, delivery_id)
        email = render_deliveries(session, settings, [delivery_id])[delivery_id]
        message = EmailMessage()
        message["Date"] = format_datetime(clock.now())
        message["Message-ID"] = make_message_id(settings.mail_from)
        message["From"] = settings.mail_from
        message["To"] = email.to
        message["Subject"] = email.subject
        for name, value in email.headers.items():
            message[name] = value
        message.set_content(email.text)
        message.add_alternative(email.html, subtype="html")
        host, port = settings.mail_url.removeprefix("smtp://").split(":")
        with smtplib.SMTP(host, int(port), timeout=settings.smtp_timeout_seconds) as smtp:
            smtp.send_message(message)
        delivery.status = DeliveryStatus.SENT
        delivery.sent_at = clock.now()


def run_naive_worker(concurrency: int) -> None:
    """The baseline's worker process: papermail's Celery app plus the naive task."""
    app = create_celery(config.get_settings())
    app.task(name=NAIVE_TASK)(naive_send_one)
    app.worker_main(
        [
            "worker",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "INFO",
            "--queues",
            config.get_settings().celery_queue,
        ]
    )


def run_baseline(args, settings, environ, sink: SinkProcess, workdir: Path) -> dict:
    ids = copy_deliveries(settings, args.baseline)
    sink.reset()
    argv = [sys.executable, str(Path(__file__).resolve()), "--naive-worker", str(args.concurrency)]
    workers = Workers(argv, environ, args.workers, workdir, "naive")
    try:
        workers.wait_ready()
        cpu_before = cpu_snapshot(workers, settings)
        started = time.perf_counter()
        app = get_celery()
        for delivery_id in ids:
            app.send_task(NAIVE_TASK, args=[delivery_id])
        wait_until_sent(settings, BASELINE_PERIOD, len(ids), timeout=600)
        elapsed = lap(started)
        peaks = workers.peak_memory_mb()
        cpu = cpu_used(cpu_before, cpu_snapshot(workers, settings))
    finally:
        workers.stop()
    stats = sink.stats()
    return {
        "messages": len(ids),
        "seconds": elapsed,
        "rate": len(ids) / elapsed,
        "planning": 0.0,
        "peaks": peaks,
        "sink": stats,
        "processes": args.workers * args.concurrency,
        "cpu": cpu,
    }


def copy_deliveries(settings: config.Settings, count: int) -> list[int]:
    """Pending rows for the baseline: the same subscribers and frozen papers, another period."""
    now = clock.now()
    with session_scope(settings) as session:
        main = session.scalars(sa.select(Digest).where(Digest.period_key == PERIOD)).one()
        digest = Digest(period_key=BASELINE_PERIOD, scoring_run_id=main.scoring_run_id, created_at=now)
        session.add(digest)
        session.flush()
        sources = session.execute(
            sa.select(Delivery.subscriber_id, Delivery.paper_ids)
            .where(Delivery.period_key == PERIOD, Delivery.status == DeliveryStatus.SENT)
            .order_by(Delivery.id)
            .limit(count)
        ).all()
        rows = [
            {
                "digest_id": digest.id,
                "subscriber_id": subscriber_id,
                "period_key": BASELINE_PERIOD,
                "paper_ids": paper_ids,
                "scheduled_for": now,
                "planned_at": now,
                "updated_at": now,
            }
            for subscriber_id, paper_ids in sources
        ]
        return list(session.scalars(sa.insert(Delivery).returning(Delivery.id), rows))


# -- reporting and profiling ----------------------------------------------------------------------


def report(name: str, result: dict) -> None:
    sink = result["sink"]
    peaks = result["peaks"]
    print(
        f"\n{name}: {result['messages']} digests in {result['seconds']:.1f} s"
        f" = {result['rate']:.1f} digests/s"
    )
    if result["planning"]:
        planning, total = result["planning"], result["planning"] + result["seconds"]
        print(
            f"  planning before that: {planning:.1f} s ({result['messages'] / planning:.0f}/s);"
            f" plan + send: {total:.1f} s = {result['messages'] / total:.1f} digests/s"
        )
    print(
        f"  {result['processes']} worker processes; peak memory per process: "
        + ", ".join(f"{p:.0f}" for p in peaks)
        + " MB"
    )
    print(
        f"  sink: {sink.messages} messages, {sink.octets / sink.messages / 1024:.1f} KB each, "
        f"{sink.connections} connections, {sink.duplicates} duplicates"
    )
    # CPU per digest doesn't depend on what else the machine is doing, unlike the rate.
    cpu = {**result["cpu"], "SMTP sink": sink.cpu_seconds}
    per_digest = {name: 1000 * seconds / result["messages"] for name, seconds in cpu.items()}
    total = sum(per_digest.values())
    print(
        f"  CPU per digest: {total:.1f} ms ("
        + ", ".join(f"{name} {ms:.1f}" for name, ms in per_digest.items())
        + f"); {os.cpu_count()} cores would allow about {1000 * (os.cpu_count() or 1) / total:.0f} digests/s"
    )


# Where a function's own CPU time is counted, by where it lives (first match wins).
COMPONENTS = [
    (
        "render (Jinja, signed links)",
        (
            "jinja2",
            "markupsafe",
            "templates/email",
            "digest/render",
            "itsdangerous",
            "subscribers/links",
            "hmac",
            "json",
        ),
    ),
    ("MIME building", ("mail/message", "b2a_qp", "encodebytes", "blake2b")),
    ("SMTP client", ("smtplib", "socket", "mail/backends", "sendall", "recv_into")),
    ("database client (SQLAlchemy, psycopg)", ("sqlalchemy", "psycopg")),
    (
        "send loop and bookkeeping",
        ("delivery/", "sending/", "mail/outbox", "subscribers/core", "redaction", "uuid", "hashlib"),
    ),
]


def profile_worker(settings: config.Settings, count: int) -> None:
    """Run send_batch here under a CPU-time profiler on ``count`` copied deliveries; print where it goes."""
    with session_scope(settings) as session:
        session.execute(sa.delete(Delivery).where(Delivery.period_key == BASELINE_PERIOD))
        session.execute(sa.delete(Digest).where(Digest.period_key == BASELINE_PERIOD))
    ids = copy_deliveries(settings, count)
    # CPU time, not wall time: waiting for PostgreSQL or the sink, or for a core that another
    # process holds, is not this worker's cost.
    profiler = cProfile.Profile(time.process_time)
    started = time.perf_counter()
    profiler.enable()
    for start in range(0, len(ids), settings.send_batch_size):
        send_batch(settings, ids[start : start + settings.send_batch_size])
    profiler.disable()
    elapsed = lap(started)
    stats = pstats.Stats(profiler)
    by_component: dict[str, float] = dict.fromkeys([name for name, _ in COMPONENTS] + ["other"], 0.0)
    for (filename, _line, function), values in stats.stats.items():
        where = f"{filename}:{function}"
        name = next((n for n, marks in COMPONENTS if any(m in where for m in marks)), "other")
        by_component[name] += values[2]  # tottime: the function's own time
    total = sum(by_component.values())
    print(
        f"\nprofile: one worker process in this one, {len(ids)} digests in {elapsed:.1f} s wall,"
        f" {1000 * total / len(ids):.2f} ms CPU per digest (profiled; the profiler adds some):"
    )
    for name, seconds in sorted(by_component.items(), key=lambda item: -item[1]):
        print(f"  {name:40} {1000 * seconds / len(ids):6.2f} ms  {100 * seconds / total:5.1f}%")
    stats.sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--naive-worker":
        run_naive_worker(int(sys.argv[2]))
    else:
        main()
