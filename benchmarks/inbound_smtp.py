"""The inbound SMTP server's rate over loopback, against a bare aiosmtpd sink, and a burst.

    .venv/bin/python benchmarks/inbound_smtp.py [--repeats R] [--messages N] [--burst B]
    (benchmarks/bounces.py runs it too, after the import figures)

* **baseline**: aiosmtpd's own ``Sink`` server (``python -m aiosmtpd``), which answers 250 and
  stores nothing: what the SMTP conversation itself costs, with the same client;
* **inbound**: ``papermail inbound`` (RCPT check of a VERP token, then the message stored and
  committed to SQLite before the 250, its processing queued on an in-memory broker).

Each server runs in its own process, as in production; the clients run in this one.
* **burst**: B (default 10,000) DSNs sent as fast as the clients can, then every one is looked for
  in ``inbound_messages``: sent == stored, no report lost or doubled.

Each rate is N messages over C concurrent connections (one thread per connection); the median of
R runs is printed, with the ratio inbound / baseline.
"""

from __future__ import annotations

import argparse
import os
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT / "src"), str(REPO_ROOT)]

from tests.bounces.conftest import dsn_for, wait_for_smtp  # noqa: E402
from tests.conftest import free_port, make_settings, settings_environ, subprocess_env  # noqa: E402

from papermail.celery_app import reset_celery  # noqa: E402
from papermail.config import use_settings  # noqa: E402
from papermail.db import migrate, session_factory  # noqa: E402
from papermail.db.models import InboundMessage  # noqa: E402
from papermail.sending.verp import VerpKind, verp_sender_for  # noqa: E402

CONNECTIONS = 4
WARM_UP = 20  # messages, sent before the clock starts
DEFAULT_MESSAGES = 1000


@dataclass(frozen=True)
class InboundFigures:
    baseline: float  # messages/s, median
    inbound: float
    burst: int
    burst_seconds: float
    stored: int
    distinct: int
    refused: int  # answers other than 250 during the burst (each retried by the client)


def _send(port: int, recipient: str, messages: list[bytes]) -> int:
    """Send ``messages`` on one connection, retrying a 4xx once a moment later; the retries made."""
    retries = 0
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        for message in messages:
            while True:
                try:
                    client.sendmail("", [recipient], message)
                    break
                except smtplib.SMTPResponseException as exc:
                    if exc.smtp_code // 100 != 4:
                        raise
                    retries += 1
                    client.rset()
                    time.sleep(0.05)
    return retries


def _blast(port: int, recipient: str, messages: list[bytes], connections: int) -> tuple[float, int]:
    """Send everything over ``connections`` parallel connections: (seconds taken, retries).

    A few warm-up messages go first, untimed: a fresh server process sets itself up (the Celery app,
    the first database connections) on its first messages.
    """
    _send(port, recipient, [dsn_for(f"warm-up{n}@example.org") for n in range(WARM_UP)])
    shares = [messages[i::connections] for i in range(connections)]
    start = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        retries = sum(pool.map(lambda share: _send(port, recipient, share), shares))
    return time.perf_counter() - start, retries


_OVERRIDES = {
    "broker_url": "memory://",
    "bounce_address": "bounces@papermail.test",
    "inbound_rate_per_ip": "1000000/m",  # one client machine sends everything here
    "inbound_connections_per_ip": "100",
}


def _settings(tmp: Path, name: str):
    directory = tmp / name
    directory.mkdir()
    values = {**_OVERRIDES, "database_url": f"sqlite:///{directory}/inbound.db"}
    settings = make_settings(directory, **values)
    use_settings(settings)
    reset_celery()
    migrate.upgrade(settings)
    return settings, settings_environ(directory, **values)


def _serve(command: list[str], environ: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """Start a server process listening on a free port; wait until it answers."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", *command, f"127.0.0.1:{port}"],
        env=subprocess_env(environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_smtp(port, " ".join(command))
    return server, port


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(30)


def _sink_run(messages: list[bytes], connections: int) -> float:
    sink, port = _serve(["aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink", "-l"], {})
    try:
        return _blast(port, "bounces@papermail.test", messages, connections)[0]
    finally:
        _stop(sink)


def _inbound_run(tmp: Path, name: str, messages: list[bytes], connections: int):
    settings, environ = _settings(tmp, name)
    recipient = verp_sender_for(settings, VerpKind.DELIVERY, 1)
    server, port = _serve(["papermail", "inbound", "--bind"], environ)
    try:
        seconds, retries = _blast(port, recipient, messages, connections)
    finally:
        _stop(server)  # it answered 250 for each only after committing it
    return settings, seconds, retries


def measure(
    tmp: Path, repeats: int = 3, count: int = DEFAULT_MESSAGES, burst: int = 10_000
) -> InboundFigures:
    """The medians over ``repeats`` runs of ``count`` messages each, and one burst of ``burst``."""
    messages = [dsn_for(f"gone{n}@example.org") for n in range(count)]
    baseline_times, inbound_times = [], []
    for run in range(repeats):
        baseline_times.append(_sink_run(messages, CONNECTIONS))
        inbound_times.append(_inbound_run(tmp, f"rate-{run}", messages, CONNECTIONS)[1])
    burst_messages = [dsn_for(f"bad{n}@example.net") for n in range(burst)]
    settings, seconds, retries = _inbound_run(tmp, "burst", burst_messages, CONNECTIONS * 2)
    with session_factory(settings)() as session:
        stored = session.scalar(sa.select(sa.func.count()).select_from(InboundMessage)) - WARM_UP
        distinct = session.scalar(sa.select(sa.func.count(sa.distinct(InboundMessage.report_key)))) - WARM_UP
    return InboundFigures(
        baseline=count / statistics.median(baseline_times),
        inbound=count / statistics.median(inbound_times),
        burst=burst,
        burst_seconds=seconds,
        stored=stored,
        distinct=distinct,
        refused=retries,
    )


def report(figures: InboundFigures, repeats: int, count: int) -> None:
    """Print the figures; exit non-zero if the burst lost or doubled a report."""
    print(f"inbound SMTP over loopback: {count} DSNs on {CONNECTIONS} connections, median of {repeats} runs")
    # The rates depend on what else the machine runs: read them with its load.
    print(f"  load average (1, 5, 15 min): {', '.join(f'{load:.1f}' for load in os.getloadavg())}")
    print(f"  baseline aiosmtpd Sink server    {figures.baseline:10.0f} messages/s")
    ratio = figures.inbound / figures.baseline
    print(f"  papermail inbound, stored first  {figures.inbound:10.0f} messages/s  (ratio {ratio:.2f})")
    print(
        f"burst: {figures.burst} DSNs by SMTP in {figures.burst_seconds:.1f} s "
        f"({figures.burst / figures.burst_seconds:.0f}/s, {figures.refused} 4xx retried); "
        f"stored {figures.stored}, distinct {figures.distinct}; lost: {figures.burst - figures.distinct}"
    )
    if figures.stored != figures.burst or figures.distinct != figures.burst:
        raise SystemExit("inbound reports were lost or doubled")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--messages", type=int, default=DEFAULT_MESSAGES)
    parser.add_argument("--burst", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report(measure(Path(tmp), args.repeats, args.messages, args.burst), args.repeats, args.messages)


if __name__ == "__main__":
    main()
