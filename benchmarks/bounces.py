"""Bounce import benchmark: reports per second through the whole pipeline, and a burst with none lost.

    .venv/bin/python benchmarks/bounces.py [--repeats R] [--burst N]

On SQLite (a temporary file, migrated):

* **baseline**: ``email.message_from_bytes`` over the corpus (the shared fixtures' real bounces),
  the least any reader of these messages must do;
* **read**: :func:`papermail.bounces.parse.read_report` alone (ARF, DSN, auto-reply, flufl.bounce);
* **import**: store + read + policy + record, in transactions of 500, as ``bounces import`` does,
  against 200 subscribers the corpus addresses belong to;
* **burst**: N (default 10,000) distinct hard-bounce DSNs for N subscribers of a bad list, imported
  in transactions of 500; it checks that every one left an event and every subscriber is bounced.

Then the inbound SMTP server's rate over loopback against a bare aiosmtpd sink, and a burst of N
DSNs by SMTP checked for losses (benchmarks/inbound_smtp.py, which also runs on its own).

It prints the median reports/s of R runs (default 3) for each, and the ratios to the baseline.
Target: import >= 500 reports/s on 2 cores.
"""

from __future__ import annotations

import argparse
import email
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT / "src"), str(REPO_ROOT)]

from benchmarks import inbound_smtp  # noqa: E402
from tests.conftest import make_settings, shared_fixtures_dir  # noqa: E402

from papermail import clock  # noqa: E402
from papermail.bounces.imports import CHUNK  # noqa: E402
from papermail.bounces.parse import read_report  # noqa: E402
from papermail.bounces.process import process_stored_messages  # noqa: E402
from papermail.bounces.store import store_inbound_messages  # noqa: E402
from papermail.config import use_settings  # noqa: E402
from papermail.db import migrate, session_factory  # noqa: E402
from papermail.db.bookkeeping import AuditLog  # noqa: E402
from papermail.db.models import (  # noqa: E402
    BounceEvent,
    InboundMessage,
    Subscriber,
    SubscriberStatus,
    Suppression,
)


def _dsn(n: int) -> bytes:
    return (
        f"From: MAILER-DAEMON@mx.example.org\nMessage-ID: <burst-{n}@mx.example.org>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nThe address is gone.\n\n"
        "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n"
        f"Final-Recipient: rfc822; bad{n}@example.net\nAction: failed\nStatus: 5.1.1\n\n--b--\n"
    ).encode()


def _rate(count: int, run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return count / statistics.median(times)


def _fresh_settings(tmp: Path, name: str):
    directory = tmp / name
    directory.mkdir()
    settings = make_settings(directory, database_url=f"sqlite:///{directory}/bench.db")
    use_settings(settings)
    migrate.upgrade(settings)
    return settings


def _add_subscribers(settings, addresses) -> None:
    now = clock.now()
    with session_factory(settings).begin() as session:
        rows = [
            {"email": a, "status": SubscriberStatus.ACTIVE, "topics": ["cs.LG"], "created_at": now}
            for a in addresses
        ]
        session.execute(sa.insert(Subscriber), rows)


def _empty(settings) -> None:
    with session_factory(settings).begin() as session:
        for model in (BounceEvent, InboundMessage, AuditLog, Suppression, Subscriber):
            session.execute(sa.delete(model))


def _import(settings, messages: list[bytes]) -> None:
    factory = session_factory(settings)
    for start in range(0, len(messages), CHUNK):
        with factory.begin() as session:
            stored = store_inbound_messages(session, messages[start : start + CHUNK], via="import")
            process_stored_messages(session, stored, settings=settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--burst", type=int, default=10_000)
    args = parser.parse_args()
    corpus = [path.read_bytes() for path in sorted((shared_fixtures_dir() / "bounces").glob("*.txt"))]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        baseline = _rate(len(corpus), lambda: [email.message_from_bytes(raw) for raw in corpus], args.repeats)
        read = _rate(len(corpus), lambda: [read_report(raw) for raw in corpus], args.repeats)
        addresses = sorted({r.address for raw in corpus for r in read_report(raw).recipients})[:200]
        settings = _fresh_settings(tmp, "import")
        import_times = []
        # One database, emptied before each run outside the timing; an untimed first run warms the
        # engine's statement cache, as a long-running worker's is.
        for run in range(args.repeats + 1):
            _empty(settings)
            _add_subscribers(settings, addresses)
            start = time.perf_counter()
            _import(settings, corpus)
            if run:
                import_times.append(time.perf_counter() - start)
        imported = len(corpus) / statistics.median(import_times)
        settings = _fresh_settings(tmp, "burst")
        _add_subscribers(settings, [f"bad{n}@example.net" for n in range(args.burst)])
        burst = [_dsn(n) for n in range(args.burst)]
        start = time.perf_counter()
        _import(settings, burst)
        burst_seconds = time.perf_counter() - start
        with session_factory(settings)() as session:
            events = session.scalar(sa.select(sa.func.count()).select_from(BounceEvent))
            bounced = session.scalar(
                sa.select(sa.func.count()).where(Subscriber.status == SubscriberStatus.BOUNCED)
            )
    print(f"corpus: {len(corpus)} real bounces; median of {args.repeats} runs")
    for label, rate in (
        ("baseline email.message_from_bytes", baseline),
        ("read_report", read),
        ("import (store+read+policy+record)", imported),
    ):
        print(f"  {label:34} {rate:10.0f} reports/s  (baseline / this: {baseline / rate:.1f}x)")
    print(f"  target >= 500 reports/s: {'met' if imported >= 500 else 'NOT met'}")
    print(
        f"burst: {args.burst} hard bounces in {burst_seconds:.1f} s ({args.burst / burst_seconds:.0f}/s); "
        f"{events} events, {bounced} subscribers bounced; lost: {args.burst - events}"
    )
    if events != args.burst or bounced != args.burst:
        raise SystemExit("reports were lost")
    with tempfile.TemporaryDirectory() as tmp_name:
        figures = inbound_smtp.measure(Path(tmp_name), args.repeats, burst=args.burst)
    inbound_smtp.report(figures, args.repeats, inbound_smtp.DEFAULT_MESSAGES)


if __name__ == "__main__":
    main()
