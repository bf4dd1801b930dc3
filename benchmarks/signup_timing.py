"""Does the time POST /subscribe takes tell a known address from a new one?

    .venv/bin/python benchmarks/signup_timing.py                 # SQLite + the embedded broker
    .venv/bin/python benchmarks/signup_timing.py --postgres      # PostgreSQL + Redis (production)
    .venv/bin/python benchmarks/signup_timing.py --tries 200

For each outcome (a new address, an active subscriber, an unsubscribed one, a suppressed one) it
posts the signup form ``--tries`` times (interleaved, so drift hits every outcome alike) through the
real app and prints the median time per outcome and the spread (slowest median minus fastest).

The baseline, measured in the same run on the same database, is the old request path: the signup
decided inside the request (``signup.request_signup``), as POST /subscribe did before issue 13.
The new path only records the request and queues ``papermail.process_signup``; a worker decides.
Exits 1 if the new path's spread is over ``--max-spread-ms`` (1 ms).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import psycopg
from flask import Flask, render_template, request

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT / "src"), str(REPO_ROOT)]

from benchmarks.web_load import SIGNUP_FIELDS  # noqa: E402

from papermail import clock, config  # noqa: E402
from papermail.celery_app import reset_celery  # noqa: E402
from papermail.config import Rate  # noqa: E402
from papermail.db import migrate, session_scope  # noqa: E402
from papermail.db.models import Subscriber, SubscriberStatus  # noqa: E402
from papermail.db.session import dispose_engines  # noqa: E402
from papermail.signup import flow  # noqa: E402
from papermail.subscribers.core import suppress  # noqa: E402
from papermail.web import create_app  # noqa: E402
from papermail.web.context import web_context  # noqa: E402
from papermail.web.forms import SignupFields  # noqa: E402

PG_ADMIN_DSN = os.environ.get("PAPERMAIL_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("PAPERMAIL_BENCH_REDIS", "redis://127.0.0.1:6379/0")
OUTCOMES = ("new", "active", "unsubscribed", "suppressed")


def add_old_request_path(app: Flask) -> None:
    """POST /subscribe-inline: the signup decided in the request, as before issue 13 (the baseline)."""

    def subscribe_inline() -> str:
        context = web_context()
        email, preferences, _errors = SignupFields.from_form(request.form).parse()
        context.transaction(
            lambda session: flow.request_signup(
                session, context.settings, email=email, preferences=preferences, limiter=context.limiter
            )
        )
        return render_template("check_inbox.html")

    app.add_url_rule("/subscribe-inline", "subscribe_inline", subscribe_inline, methods=["POST"])


def seed(settings: config.Settings, tries: int) -> dict[str, Callable[[int], str]]:
    """Addresses for each outcome; a distinct one per try, so no per-address limit changes the path."""
    run = uuid.uuid4().hex[:6]
    with session_scope(settings) as session:
        for n in range(tries * 2):
            for prefix, status in (
                ("active", SubscriberStatus.ACTIVE),
                ("gone", SubscriberStatus.UNSUBSCRIBED),
            ):
                session.add(
                    Subscriber(
                        email=f"{prefix}-{run}-{n}@example.org",
                        status=status,
                        topics=["cs.LG"],
                        created_at=clock.now(),
                    )
                )
            suppress(session, f"erased-{run}-{n}@example.org", "erased")
    return {
        "new": lambda n: f"new-{run}-{n}@example.org",
        "active": lambda n: f"active-{run}-{n}@example.org",
        "unsubscribed": lambda n: f"gone-{run}-{n}@example.org",
        "suppressed": lambda n: f"erased-{run}-{n}@example.org",
    }


def measure(app: Flask, path: str, addresses: dict[str, Callable[[int], str]], tries: int, offset: int):
    """Median milliseconds per outcome for ``tries`` interleaved posts to ``path``."""
    client = app.test_client()
    page = client.get("/").get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    timings: dict[str, list[float]] = {outcome: [] for outcome in OUTCOMES}
    for n in range(tries):
        for outcome in OUTCOMES:
            form = {**SIGNUP_FIELDS, "email": addresses[outcome](offset + n), "csrf_token": token}
            started = time.perf_counter()
            response = client.post(path, data=form)
            timings[outcome].append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"{path} answered {response.status_code} for {outcome}")
    return {outcome: statistics.median(values) for outcome, values in timings.items()}


def make_settings(workdir: Path, postgres: bool) -> tuple[config.Settings, Callable[[], None]]:
    environ = {
        "PAPERMAIL_DATA_DIR": str(workdir),
        "PAPERMAIL_SECRET_KEY": "benchmark",
        "PAPERMAIL_MAIL_URL": "memory:",
        "PAPERMAIL_CELERY_QUEUE": f"papermail-bench-{uuid.uuid4().hex[:8]}",
    }
    cleanup = lambda: None  # noqa: E731
    if postgres:
        name = f"pm_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        host = PG_ADMIN_DSN.split("@", 1)[1].rsplit("/", 1)[0]
        environ["PAPERMAIL_DATABASE_URL"] = f"postgresql+psycopg://postgres@{host}/{name}"
        environ["PAPERMAIL_BROKER_URL"] = REDIS_URL

        def cleanup() -> None:
            dispose_engines()
            with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    settings = config.load_settings(environ)
    # The per-IP limit and the global budget would stop the run; every outcome passes the same
    # checks anyway.
    return replace(
        settings,
        signup_rate_per_ip=Rate(10**9, settings.signup_rate_per_ip.window, "1e9/h"),
        signup_budget=Rate(10**9, settings.signup_budget.window, "1e9/m"),
    ), cleanup


def report(title: str, medians: dict[str, float]) -> float:
    spread = max(medians.values()) - min(medians.values())
    shown = "  ".join(f"{outcome} {value:6.2f} ms" for outcome, value in medians.items())
    print(f"{title:<34} {shown}   spread {spread:5.2f} ms")
    return spread


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=50, help="posts per outcome and path")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL + Redis instead of SQLite")
    parser.add_argument("--max-spread-ms", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        settings, cleanup = make_settings(Path(workdir), args.postgres)
        try:
            config.use_settings(settings)
            reset_celery()
            migrate.upgrade(settings)
            addresses = seed(settings, args.tries)
            app = create_app(settings)
            add_old_request_path(app)
            setup = "PostgreSQL + Redis" if args.postgres else "SQLite + embedded broker"
            print(f"POST /subscribe, median of {args.tries} tries per outcome ({setup})")
            measure(app, "/subscribe", addresses, 5, offset=args.tries)  # warm-up: connections, caches
            baseline = report(
                "baseline: decided in the request",
                measure(app, "/subscribe-inline", addresses, args.tries, offset=0),
            )
            spread = report(
                "now: recorded, a worker decides",
                measure(app, "/subscribe", addresses, args.tries, offset=args.tries + 5),
            )
            print(f"spread ratio now/baseline: {spread / baseline:.2f}" if baseline else "")
        finally:
            config.use_settings(None)
            reset_celery()
            cleanup()
    if spread > args.max_spread_ms:
        print(f"FAIL: outcomes differ by {spread:.2f} ms (> {args.max_spread_ms} ms)")
        return 1
    print(f"ok: every outcome within {args.max_spread_ms} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
