"""Subscriber import benchmark: ``papermail subscribers import`` against the naive row-by-row way.

    /work/main/.venv/bin/python benchmarks/admin_import.py [--quick] [--rows N] [--repeats R]

On SQLite (a temporary file) and on PostgreSQL (its own database, created, migrated and dropped),
with a CSV of N subscribers (default 5,000; ``--quick`` 1,000):

* **check**: reading and validating every row (:func:`read_import_file`); the same for both ways.
* **papermail**: :func:`apply_import`, two lookups and one bulk INSERT per chunk of 500 addresses.
* **baseline**: one SELECT for the address, one for its suppression, then an ORM add and a flush,
  per row, in one transaction (what an import looks like written the obvious way).
* **again**: importing the same file a second time (nothing changes; every row is looked up).

It prints the median of R runs (default 3) for each, and the baseline / papermail ratio. Each run
starts from an empty database.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import sqlalchemy as sa

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT / "src"), str(REPO_ROOT)]

from tests.conftest import PG_ADMIN_DSN, make_settings  # noqa: E402

from papermail import clock  # noqa: E402
from papermail.admin.subscriber_csv import ImportRow, apply_import, read_import_file  # noqa: E402
from papermail.config import Settings  # noqa: E402
from papermail.db import get_engine, migrate, session_scope  # noqa: E402
from papermail.db.models import Base, Subscriber, Suppression  # noqa: E402
from papermail.redaction import email_hash  # noqa: E402
from papermail.subscribers.preferences import apply_preferences  # noqa: E402

TOPICS = ["cs.LG", "cs.CL", "cs.CV", "cs.AI", "cs.RO", "stat.ML"]


def make_csv(rows: int) -> str:
    """A realistic import file: topics, some keywords, mostly active, a few unsubscribed."""
    rng = random.Random(7)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["email", "topics", "keywords", "status", "timezone"])
    for n in range(rows):
        writer.writerow(
            [
                f"Reader.{n}@Example.org",
                ";".join(rng.sample(TOPICS, 2)),
                "diffusion;large language models" if n % 4 == 0 else "",
                "unsubscribed" if n % 50 == 0 else "active",
                rng.choice(["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"]),
            ]
        )
    return out.getvalue()


def naive_import(settings: Settings, rows: list[ImportRow]) -> None:
    """The obvious way: look each address up, then add and flush it, one row at a time."""
    with session_scope(settings) as session:
        for row in rows:
            if session.scalar(sa.select(Subscriber.id).where(Subscriber.email == row.email)) is not None:
                continue
            suppressed = sa.select(Suppression.id).where(Suppression.email_hash == email_hash(row.email))
            if session.scalar(suppressed) is not None:
                continue
            subscriber = Subscriber(email=row.email, status=row.status, created_at=clock.now())
            apply_preferences(subscriber, row.as_new)
            session.add(subscriber)
            session.flush()


def bulk_import(settings: Settings, rows: list[ImportRow]) -> None:
    with session_scope(settings) as session:
        apply_import(session, rows, actor="benchmark", source="benchmark.csv")


def empty(settings: Settings) -> None:
    with get_engine(settings.database_url).begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


def timed(run: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def measure(settings: Settings, text: str, repeats: int) -> dict[str, float]:
    """Median seconds of each step over ``repeats`` runs, each from an empty database."""
    migrate.upgrade(settings)
    times: dict[str, list[float]] = {"check": [], "papermail": [], "again": [], "baseline": []}
    for _ in range(repeats):
        seconds, checked = timed(
            lambda: read_import_file(io.StringIO(text), confirmed=False, default_topics=TOPICS)
        )
        assert not checked.bad_rows
        times["check"].append(seconds)
        empty(settings)
        times["papermail"].append(timed(lambda: bulk_import(settings, checked.rows))[0])  # noqa: B023
        times["again"].append(timed(lambda: bulk_import(settings, checked.rows))[0])  # noqa: B023
        empty(settings)
        times["baseline"].append(timed(lambda: naive_import(settings, checked.rows))[0])  # noqa: B023
        empty(settings)
    return {step: statistics.median(values) for step, values in times.items()}


def report(backend: str, rows: int, medians: dict[str, float]) -> None:
    per_row = {step: seconds / rows * 1e6 for step, seconds in medians.items()}
    print(f"\n{backend}: {rows} rows, median of runs")
    for step in ("check", "papermail", "again", "baseline"):
        print(f"  {step:10} {medians[step]:7.2f} s  {per_row[step]:7.0f} µs/row")
    print(f"  baseline / papermail: {medians['baseline'] / medians['papermail']:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 rows, one run")
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows, repeats = (1000, 1) if args.quick else (args.rows, args.repeats)
    text = make_csv(rows)
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = make_settings(Path(tmp), database_url=f"sqlite:///{tmp}/bench.db")
        report("SQLite", rows, measure(sqlite, text, repeats))
        name = f"pm_bench_admin_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = sa.engine.make_url(PG_ADMIN_DSN).set(drivername="postgresql+psycopg", database=name)
            postgres = make_settings(Path(tmp), database_url=url.render_as_string(hide_password=False))
            report("PostgreSQL", rows, measure(postgres, text, repeats))
            get_engine(postgres.database_url).dispose()
        finally:
            with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
