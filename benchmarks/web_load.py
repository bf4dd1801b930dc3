"""Web load check: ``papermail web`` (gunicorn, 2 workers) under wrk and a Python load generator.

    .venv/bin/python benchmarks/web_load.py            # both setups, ~2 minutes
    .venv/bin/python benchmarks/web_load.py --quick    # shorter runs, for a CI smoke

Two setups: PostgreSQL with a Redis broker (production: rate limits in Redis), and SQLite with the
embedded broker (one machine: rate limits in the database). For each, ``papermail web`` serves the
app with 2 sync workers (access log on, as deployed), and for ``--seconds`` each:

wrk (``apt-get install -y wrk``), ``--connections`` connections, the pages anyone may read:

* ``GET /healthz``: the baseline (one ``SELECT 1``), measured in the same run;
* ``GET /``: the signup page with its live preview of 5 trending papers;
* ``GET /trending`` and ``GET /trending.xml``: the public ranking, page and Atom feed (the issue
  asks for at least 1,000 requests/s each on a 2-core machine).

``--concurrency`` Python client threads, for what wrk can't script simply:

* ``GET /healthz`` again: the baseline for this client;
* ``POST /subscribe``: a different valid address each time (insert, rate-limit check, enqueue).

It prints requests/s, p50 and p99 latency and the error count (anything but a 200), and the ratio of
each page's throughput to its client's baseline. Then a burst: ``--burst`` concurrent, identical
signups for one address. Afterwards that address must have exactly one subscriber row and at most 3
queued confirmation emails (the per-address limit). Exits 1 if any request failed or the burst
check fails.

PostgreSQL runs in its own database on 127.0.0.1:5432 (user postgres, trust auth), created and
dropped here; Redis on 127.0.0.1:6379 with a queue and rate-limit keys of its own; SQLite and the
embedded broker in a temporary directory. The machine is shared: trust ratios more than absolutes.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import psycopg
import redis
import sqlalchemy as sa

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT / "src"), str(REPO_ROOT)]

from tests.conftest import free_port  # noqa: E402
from tests.support.web import add_run  # noqa: E402

from papermail import config  # noqa: E402
from papermail.celery_app import reset_celery  # noqa: E402
from papermail.db import migrate, session_scope  # noqa: E402
from papermail.db.bookkeeping import AuditLog, SignupRequest  # noqa: E402
from papermail.db.models import Subscriber  # noqa: E402
from papermail.db.session import dispose_engines  # noqa: E402
from papermail.signup.limits import address_key, ip_key, limiter_for, redis_key_prefix  # noqa: E402
from papermail.signup.requests import process_request  # noqa: E402

PG_ADMIN_DSN = os.environ.get("PAPERMAIL_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("PAPERMAIL_BENCH_REDIS", "redis://127.0.0.1:6379/0")
CSRF_FIELD = re.compile(rb'name="csrf_token" value="([^"]+)"')
COOKIE = re.compile(r"(papermail_session=[^;]+)")
SIGNUP_FIELDS = {
    "topics": "cs.LG",
    "keywords": "diffusion",
    "frequency": "weekly",
    "send_weekday": "0",
    "send_hour": "8",
    "timezone": "Europe/Berlin",
}
BURST_ADDRESS = "burst@example.org"
TRENDING_TARGET = 1_000  # requests/s for /trending and /trending.xml (issue 16)


# -- the server -----------------------------------------------------------------------------------


@dataclass
class Setup:
    name: str
    database_url: str
    broker_url: str
    cleanup: Callable[[], None]


def benchmark_limit_keys(run_id: str) -> list[str]:
    """The Redis rate-limit keys this benchmark fills (its client IP and the burst address)."""
    keys = (ip_key("signup", "127.0.0.1"), address_key("confirm", BURST_ADDRESS))
    return [redis_key_prefix(queue_name(run_id)) + key for key in keys]


def queue_name(run_id: str) -> str:
    return f"papermail-webload-{run_id}"


def postgres_redis_setup(run_id: str) -> Setup:
    name = f"pm_webload_{run_id}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(PG_ADMIN_DSN).set(drivername="postgresql+psycopg", database=name)

    def cleanup() -> None:
        dispose_engines()
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        client = redis.Redis.from_url(REDIS_URL)
        client.delete(queue_name(run_id), *benchmark_limit_keys(run_id))

    return Setup("PostgreSQL + Redis", url.render_as_string(hide_password=False), REDIS_URL, cleanup)


def sqlite_setup(data_dir: Path) -> Setup:
    return Setup(
        "SQLite + embedded broker",
        f"sqlite:///{data_dir}/papermail.db",
        f"sqla+sqlite:///{data_dir}/broker.db",
        dispose_engines,
    )


def environ_for(setup: Setup, data_dir: Path, run_id: str) -> dict[str, str]:
    return {
        "PAPERMAIL_DATA_DIR": str(data_dir),
        "PAPERMAIL_DATABASE_URL": setup.database_url,
        "PAPERMAIL_BROKER_URL": setup.broker_url,
        "PAPERMAIL_MAIL_URL": "memory:",
        "PAPERMAIL_SECRET_KEY": "benchmark-secret",
        "PAPERMAIL_CELERY_QUEUE": queue_name(run_id),
        # One client address sends everything here, far faster than any real crowd: the per-IP
        # limit and the site-wide signup budget (120 a minute) would stop the benchmark.
        "PAPERMAIL_SIGNUP_RATE_PER_IP": "100000000/h",
        "PAPERMAIL_SIGNUP_BUDGET": "100000000/m",
    }


def seed(settings: config.Settings) -> None:
    """A finished scoring run of 30 papers: the home page's preview, /trending's two pages."""
    with session_scope(settings) as session:
        add_run(session, [f"A trending paper about load testing, part {n}" for n in range(1, 31)])


def start_gunicorn(environ: dict[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(config.PREFIX)}
    env.update(environ)
    env["PYTHONPATH"] = str(REPO_ROOT / "src")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "papermail", "web", "--workers", "2", "--bind", f"127.0.0.1:{port}"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if request(port, "GET", "/healthz")[0] == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"gunicorn did not start; log:\n{log_path.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


# -- the client -----------------------------------------------------------------------------------


def request(port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    """One request on a new connection (gunicorn's sync workers close after each response)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body or None, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read(), response.getheader("Set-Cookie") or ""
    finally:
        connection.close()


def form_session(port: int) -> tuple[str, str]:
    """A session cookie and its CSRF token, as a browser gets them from the home page."""
    _status, body, cookie = request(port, "GET", "/")
    return COOKIE.search(cookie)[1], CSRF_FIELD.search(body)[1].decode()


def signup_request(port: int, cookie: str, token: str, address: str) -> int:
    body = urlencode({**SIGNUP_FIELDS, "email": address, "csrf_token": token}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
    return request(port, "POST", "/subscribe", body, headers)[0]


@dataclass
class Measured:
    """One route's figures, however they were measured."""

    name: str
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int

    def line(self, baseline: Measured | None) -> str:
        ratio = f"{self.rate / baseline.rate:6.2f}x" if baseline else "  base "
        return (
            f"  {self.name:<18} {self.rate:8.1f} req/s  p50 {self.p50_ms:7.1f} ms  "
            f"p99 {self.p99_ms:7.1f} ms  errors {self.errors:<4} vs healthz {ratio}"
        )


@dataclass
class Result:
    name: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    def measured(self) -> Measured:
        rate = len(self.latencies) / self.seconds
        return Measured(self.name, rate, self.percentile(50), self.percentile(99), self.errors)


WRK_ROUTES = ("/healthz", "/", "/trending", "/trending.xml")
WRK_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
WRK_PERCENTILE = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
WRK_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
WRK_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
TO_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(port: int, path: str, seconds: float, connections: int) -> Measured:
    """``wrk`` on one route: requests/s, p50 and p99 (from its --latency table), and errors."""
    command = [
        "wrk", "--threads", "2", "--connections", str(connections), "--duration", f"{seconds:g}s",
        "--timeout", "10s", "--latency", f"http://127.0.0.1:{port}{path}",
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    percentiles = {int(p): float(value) * TO_MS[unit] for p, value, unit in WRK_PERCENTILE.findall(output)}
    non_2xx = WRK_NON_2XX.search(output)
    # Gunicorn's sync workers close every connection after the response: wrk then counts a "read"
    # error when it finds a kept connection closed, which is a reconnect, not a failed request.
    socket_errors = WRK_SOCKET_ERRORS.search(output)
    failed = int(non_2xx[1]) if non_2xx else 0
    if socket_errors:
        failed += int(socket_errors[1]) + int(socket_errors[3]) + int(socket_errors[4])
    return Measured(
        f"GET {path}", float(WRK_RATE.search(output)[1]), percentiles[50], percentiles[99], failed
    )


def hammer(
    name: str, seconds: float, threads: int, make_call: Callable[[int], Callable[[int], int]]
) -> Result:
    """Run ``threads`` clients for ``seconds``; each calls its ``make_call(thread)(n)`` in a loop."""
    result = Result(name, seconds)
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(index: int) -> None:
        call = make_call(index)
        n = 0
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            status = call(n)
            elapsed = time.perf_counter() - started
            with lock:
                result.latencies.append(elapsed)
                result.errors += status != 200
            n += 1

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    result.seconds = time.monotonic() - started
    return result


def process_recorded_signups(settings: config.Settings) -> None:
    """What ``papermail.process_signup`` does in a worker, for every signup the web recorded."""
    limiter = limiter_for(settings)
    config.use_settings(settings)  # the confirmations it queues go to this setup's broker
    reset_celery()
    try:
        with session_scope(settings) as session:
            waiting = session.scalars(sa.select(SignupRequest.id).order_by(SignupRequest.id)).all()
        for request_id in waiting:
            with session_scope(settings) as session:
                process_request(session, settings, request_id, limiter)
    finally:
        config.use_settings(None)
        reset_celery()


def burst(port: int, size: int) -> list[int]:
    """``size`` identical signups released at the same moment."""
    sessions = [form_session(port) for _ in range(size)]
    barrier = threading.Barrier(size)
    statuses: list[int] = []

    def one(cookie: str, token: str) -> None:
        barrier.wait()
        statuses.append(signup_request(port, cookie, token, BURST_ADDRESS))

    threads = [threading.Thread(target=one, args=s) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def run_setup(setup: Setup, data_dir: Path, run_id: str, args: argparse.Namespace) -> bool:
    environ = environ_for(setup, data_dir, run_id)
    settings = config.load_settings(environ)
    migrate.upgrade(settings)
    seed(settings)
    dispose_engines()
    port = free_port()
    server = start_gunicorn(environ, port, data_dir / "gunicorn.log")
    try:
        pages = [wrk(port, path, args.seconds, args.connections) for path in WRK_ROUTES]
        baseline = hammer(
            "GET /healthz",
            args.seconds,
            args.concurrency,
            lambda _i: lambda _n: request(port, "GET", "/healthz")[0],
        ).measured()

        def make_signup(index: int) -> Callable[[int], int]:
            cookie, token = form_session(port)
            return lambda n: signup_request(port, cookie, token, f"load-{run_id}-{index}-{n}@example.org")

        signups = hammer("POST /subscribe", args.seconds, args.concurrency, make_signup)
        signed_up = signups.measured()
        burst_statuses = burst(port, args.burst)
    finally:
        stop(server)
    process_recorded_signups(settings)
    with session_scope(settings) as session:
        rows = session.scalar(sa.select(sa.func.count()).where(Subscriber.email == BURST_ADDRESS))
        subscriber_id = session.scalar(sa.select(Subscriber.id).where(Subscriber.email == BURST_ADDRESS))
        queued = session.scalar(
            sa.select(sa.func.count()).where(
                AuditLog.action == "subscriber.signup", AuditLog.subscriber_id == subscriber_id
            )
        )
        stored_emails = session.scalars(
            sa.select(Subscriber.email).where(Subscriber.email.like("load-%"))
        ).all()
    stored = len(stored_emails)
    if setup.broker_url.startswith("redis"):
        # Each signup left a per-address counter in Redis; they'd expire, but tidy up now.
        prefix = redis_key_prefix(queue_name(run_id))
        keys = [prefix + address_key("confirm", address) for address in stored_emails]
        redis.Redis.from_url(REDIS_URL).delete(*keys, *benchmark_limit_keys(run_id))
    print(f"\n{setup.name}: papermail web (gunicorn, 2 sync workers), {args.seconds:g} s per route")
    print(f" wrk, 2 threads, {args.connections} connections:")
    for result in pages:
        print(result.line(None if result is pages[0] else pages[0]))
    for result in pages[2:]:
        verdict = "meets" if result.rate >= TRENDING_TARGET else "BELOW"
        print(f"  {result.name} {verdict} the {TRENDING_TARGET:,} req/s target")
    print(f" Python client, {args.concurrency} threads:")
    for result in (baseline, signed_up):
        print(result.line(None if result is baseline else baseline))
    print(f"  signups stored: {stored} of {len(signups.latencies)} POSTs")
    burst_errors = sum(status != 200 for status in burst_statuses)
    print(
        f"  burst: {args.burst} identical signups at once -> {burst_errors} errors, "
        f"{rows} subscriber row(s), {queued} confirmation(s) queued (limit 3)"
    )
    errors = sum(result.errors for result in pages) + baseline.errors + signups.errors + burst_errors
    ok = errors == 0 and rows == 1 and queued <= 3 and stored == len(signups.latencies)
    if not ok:
        problems = [
            line for line in (data_dir / "gunicorn.log").read_text().splitlines() if "Exception on" in line
        ]
        print("  FAILED; gunicorn's log, without the 200s:\n    " + "\n    ".join(problems[-40:]))
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2-second runs, a burst of 10")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each run")
    parser.add_argument("--concurrency", type=int, default=8, help="Python client threads")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--burst", type=int, default=30, help="identical signups released at once")
    parser.add_argument("--only", choices=["postgresql", "sqlite"], help="run one setup")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        parser.error("wrk is missing: install it with `apt-get install -y wrk`")
    if args.quick:
        args.seconds, args.burst = 2.0, 10
    run_id = uuid.uuid4().hex[:8]
    ok = True
    with tempfile.TemporaryDirectory(prefix="papermail-webload-") as tmp:
        setups = []
        if args.only in (None, "postgresql"):
            setups.append((postgres_redis_setup(run_id), Path(tmp) / "pg"))
        if args.only in (None, "sqlite"):
            setups.append((sqlite_setup(Path(tmp) / "sqlite"), Path(tmp) / "sqlite"))
        for setup, data_dir in setups:
            data_dir.mkdir(parents=True, exist_ok=True)
            try:
                ok = run_setup(setup, data_dir, run_id, args) and ok
            finally:
                setup.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
