"""``papermail doctor``: is this installation able to do its job? Each check says ok, warn or fail.

Checks run in order and never raise: a broken database still lets the broker and SMTP checks run,
so one command shows everything that is wrong. Nothing is sent and nothing is written, except that
the broker check declares the work queue (as any worker does) and the optional worker check runs
one heartbeat task, which writes one audit row.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from papermail import task_names
from papermail.admin import health
from papermail.bounces.rates import bounce_checks
from papermail.celery_app import enqueue_after_commit, get_celery
from papermail.config import ConfigError, Settings, get_settings
from papermail.db import get_engine, migrate, session_scope
from papermail.db.bookkeeping import AuditLog
from papermail.db.session import unreachable_database_message
from papermail.mail.backends import check_connection
from papermail.mail.message import sender_domain
from papermail.redaction import mask_secrets

OK, WARN, FAIL = "ok", "warn", "fail"
NETWORK_TIMEOUT_SECONDS = 10.0
# Host names that can't be anyone's real site or mail domain (RFC 2606, RFC 6761, mDNS).
PLACEHOLDER_HOSTS = {"localhost", "localhost.localdomain", "127.0.0.1", "::1", "0.0.0.0"}  # noqa: S104
PLACEHOLDER_SUFFIXES = (".localhost", ".local", ".test", ".example", ".invalid", ".localdomain")
PLACEHOLDER_DOMAINS = ("example.com", "example.net", "example.org")
POSTAL_ADDRESS_PLACEHOLDER = "(set PAPERMAIL_POSTAL_ADDRESS)"


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``status`` is ok, warn (works, but look at it) or fail."""

    name: str
    status: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_checks(*, worker_timeout: float | None = None) -> list[Check]:
    """Run every check; with ``worker_timeout``, also wait that long for a worker to run a task."""
    try:
        settings = get_settings()
    except ConfigError as exc:
        return [Check("configuration", FAIL, str(exc))]
    checks = [Check("configuration", OK, f"{settings.env} settings are valid")]
    database_ok = _add(checks, "database", lambda: check_database(settings))
    if database_ok:
        database_ok = _add(checks, "migrations", lambda: check_migrations(settings))
    _add_many(checks, "sources", lambda: health.check_sources(settings))
    if database_ok:
        _add_many(checks, "fetches", lambda: health.check_fetches(settings))
        _add_many(checks, "ranking", lambda: [health.check_ranking(settings)])
        _add_many(checks, "categories", lambda: health.check_categories(settings))
        _add_many(checks, "beat", lambda: [health.check_beat(settings)])
        _add_many(checks, "bounces", lambda: check_bounces(settings))
    broker_ok = _add(checks, "broker", lambda: check_broker(settings))
    if worker_timeout is not None:
        if database_ok and broker_ok:
            _add(checks, "worker", lambda: check_worker(settings, worker_timeout))
        else:
            checks.append(Check("worker", FAIL, "not checked: needs the database and the broker"))
    _add(checks, "mail", lambda: check_mail(settings))
    checks.append(check_base_url(settings))
    checks.append(check_from_domain(settings))
    checks.append(check_postal_address(settings))
    # A driver's error may quote the URL it was given; no check may print a password.
    urls = (settings.database_url, settings.broker_url, settings.mail_url)
    return [Check(c.name, c.status, mask_secrets(c.detail, *urls)) for c in checks]


def _add(checks: list[Check], name: str, run: Callable[[], Check]) -> bool:
    """Run one check, turning any exception into a failure; return True unless it failed."""
    try:
        check = run()
    except Exception as exc:  # a doctor reports what is broken; it doesn't crash on it
        check = Check(name, FAIL, _one_line(exc))
    checks.append(check)
    return check.status != FAIL


def _add_many(checks: list[Check], name: str, run: Callable[[], list[tuple[str, str, str]]]) -> None:
    """Run a group of checks given as (name, status, detail); an exception fails the group."""
    try:
        checks.extend(Check(*found) for found in run())
    except Exception as exc:  # a doctor reports what is broken; it doesn't crash on it
        checks.append(Check(name, FAIL, _one_line(exc)))


def check_bounces(settings: Settings) -> list[tuple[str, str, str]]:
    """The last period's bounce and complaint rates, and recent sender faults (docs/bounces.md)."""
    with session_scope(settings) as session:
        return bounce_checks(session)


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = mask_secrets(str(orig)).strip().splitlines()
    return text[0] if text else type(orig).__name__


def check_database(settings: Settings) -> Check:
    """The database answers a query."""
    try:
        with get_engine(settings.database_url).connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        return Check("database", FAIL, unreachable_database_message(exc, settings.database_url))
    return Check("database", OK, f"connected to {settings.masked()['database_url']}")


def check_migrations(settings: Settings) -> Check:
    """The schema is at the newest shipped revision and matches the models."""
    current, head = migrate.current_revision(settings), migrate.head_revision(settings)
    if current is None:
        return Check("migrations", FAIL, "the database is empty: run `papermail db upgrade`")
    if current != head:
        return Check(
            "migrations",
            FAIL,
            f"the database is at {current}, the package at {head}: run `papermail db upgrade`",
        )
    drift = migrate.schema_drift(settings)
    if drift:
        return Check(
            "migrations", WARN, f"at {head}, but {len(drift)} differences from the models: {drift[0]}"
        )
    return Check("migrations", OK, f"at {head} (newest)")


def check_broker(settings: Settings) -> Check:
    """The broker accepts a connection and the work queue exists (declared as a worker would)."""
    if settings.broker_url.startswith("memory"):
        return Check("broker", WARN, "in-process memory broker: workers in other processes can't see it")
    with get_celery().connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=NETWORK_TIMEOUT_SECONDS)
        conn.default_channel.queue_declare(settings.celery_queue, durable=True, auto_delete=False)
    return Check("broker", OK, f"{settings.masked()['broker_url']}, queue {settings.celery_queue}")


def check_worker(settings: Settings, timeout: float) -> Check:
    """A worker picks up a heartbeat task and writes its audit row within ``timeout`` seconds."""
    token = f"doctor-{uuid.uuid4().hex}"
    with session_scope(settings) as session:
        enqueue_after_commit(session, task_names.RECORD_HEARTBEAT, token)
    started = time.monotonic()
    query = sa.select(AuditLog.id).where(
        AuditLog.action == "worker.heartbeat", AuditLog.details["token"].as_string() == token
    )
    while time.monotonic() - started < timeout:
        with session_scope(settings) as session:
            if session.scalar(query) is not None:
                return Check("worker", OK, f"a worker ran a task in {time.monotonic() - started:.1f}s")
        time.sleep(0.2)
    return Check("worker", FAIL, f"no worker ran a task within {timeout:g}s (is `papermail worker` running?)")


def check_mail(settings: Settings) -> Check:
    """For SMTP: connect, TLS and log in without sending. Other backends: say where mail goes."""
    scheme = urlsplit(settings.mail_url).scheme
    where = settings.masked()["mail_url"]
    try:
        check_connection(
            settings.mail_url, timeout=min(settings.smtp_timeout_seconds, NETWORK_TIMEOUT_SECONDS)
        )
    except ConnectionError as exc:
        return Check("mail", FAIL, f"{where}: {exc}")
    if scheme.startswith("smtp"):
        return Check("mail", OK, f"{where}: connected and logged in (nothing sent)")
    status = FAIL if settings.is_production else WARN
    return Check("mail", status, f"{where}: mail is not delivered to anyone (use smtp:// to send)")


def placeholder_reason(host: str) -> str | None:
    """Why a host name can't be a real public site or mail domain, or None if it could be."""
    host = host.lower().rstrip(".")
    if not host:
        return "it is empty"
    if host in PLACEHOLDER_HOSTS:
        return f"{host} is this machine"
    if host.endswith(PLACEHOLDER_SUFFIXES) or "." not in host:
        return f"{host} is not a public domain"
    if host in PLACEHOLDER_DOMAINS or host.endswith(tuple("." + d for d in PLACEHOLDER_DOMAINS)):
        return f"{host} is a documentation example"
    return None


def _real_or_not(settings: Settings, name: str, variable: str, host: str, value: str) -> Check:
    reason = placeholder_reason(host)
    if reason is None:
        return Check(name, OK, value)
    # A development setup is expected to run on localhost; production mail must carry real links.
    status = FAIL if settings.is_production else WARN
    return Check(name, status, f"{value}: {reason}; set {variable}")


def check_base_url(settings: Settings) -> Check:
    """The base URL in every email link is a real public https address."""
    parts = urlsplit(settings.base_url)
    check = _real_or_not(settings, "base URL", "PAPERMAIL_BASE_URL", parts.hostname or "", settings.base_url)
    if check.status == OK and parts.scheme != "https":
        return Check("base URL", WARN, f"{settings.base_url}: links are not https")
    return check


def check_from_domain(settings: Settings) -> Check:
    """The From address is on a real domain (it is also the Message-ID domain)."""
    domain = sender_domain(settings.mail_from)
    return _real_or_not(settings, "From domain", "PAPERMAIL_FROM", domain, settings.mail_from)


def check_postal_address(settings: Settings) -> Check:
    """A postal address is set for the digest footer (CAN-SPAM)."""
    if settings.postal_address.strip() in ("", POSTAL_ADDRESS_PLACEHOLDER):
        status = FAIL if settings.is_production else WARN
        return Check("postal address", status, "not set; set PAPERMAIL_POSTAL_ADDRESS (CAN-SPAM)")
    return Check("postal address", OK, settings.postal_address)
