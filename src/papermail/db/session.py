"""Engines and sessions. Logic takes a Session; only tasks, commands and requests open one."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from papermail.config import Settings, get_settings
from papermail.redaction import mask_secrets

# SQLite is shared by the web, worker and beat processes: WAL lets readers run beside one writer,
# and the busy timeout makes a second writer wait instead of failing with "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_IMMEDIATE = "sqlite_immediate"  # execution option: see _sqlite_begin


def _sqlite_connect(dbapi_connection, _record) -> None:
    # pysqlite's own transaction handling is switched off; see _sqlite_begin.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn) -> None:
    # pysqlite defers BEGIN until the first write, which breaks SAVEPOINTs and lets a
    # read-then-write transaction fail late; SQLAlchemy documents emitting BEGIN ourselves.
    # A plain BEGIN reads from a snapshot: if another connection commits before this transaction
    # first writes, that write fails at once ("database is locked", no busy wait). Connections
    # with the ``sqlite_immediate`` option take the write lock up front instead (waiting for it).
    immediate = conn.get_execution_options().get(SQLITE_IMMEDIATE)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


_engines: dict[str, sa.Engine] = {}
_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock
LOCK_RETRY_SECONDS = 0.05  # the first pause of with_lock_retries; doubled each time
T = TypeVar("T")


def get_engine(url: str) -> sa.Engine:
    """One engine (and connection pool) per database URL per process."""
    if url not in _engines:
        _engines[url] = _create_engine(url)
    return _engines[url]


def dispose_engines() -> None:
    """Close every pooled connection (before forking, or at the end of tests)."""
    for engine in _engines.values():
        engine.dispose()


def _create_engine(url: str) -> sa.Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False})
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


@cache
def _sessionmaker(url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


def session_factory(settings: Settings | None = None) -> sessionmaker[Session]:
    """The session factory for the configured database."""
    return _sessionmaker((settings or get_settings()).database_url)


@cache
def _writer_sessionmaker(url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url).execution_options(**{SQLITE_IMMEDIATE: True}), expire_on_commit=False)


def writer_session_factory(settings: Settings | None = None) -> sessionmaker[Session]:
    """Sessions for work that reads and then writes in one transaction, with other writers about.

    On SQLite each transaction takes the write lock when it begins (BEGIN IMMEDIATE), so its
    writes can't fail because another process committed after it read. On PostgreSQL it is the
    same as :func:`session_factory`.
    """
    return _writer_sessionmaker((settings or get_settings()).database_url)


def is_lock_conflict(exc: sa.exc.OperationalError) -> bool:
    """True for a transaction that lost a race (SQLite's lock, a PostgreSQL deadlock): run it again."""
    message = str(exc.orig).lower()
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return sqlstate in _RETRYABLE_SQLSTATES or "database is locked" in message or "busy" in message


def with_lock_retries(
    factory: sessionmaker[Session],
    work: Callable[[Session], T],
    attempts: int = 5,
    *,
    pause: float = LOCK_RETRY_SECONDS,
    on_retry: Callable[[int, sa.exc.OperationalError], None] | None = None,
) -> T:
    """``work`` in a committed transaction, re-run after a short, growing, jittered pause if it lost a race.

    A burst of writers on SQLite otherwise fails a share of them with "database is locked" and
    leaves their work to a sweeper minutes later. ``pause`` is the first pause (0: re-run at once);
    ``on_retry`` is told of each lost race (the attempt, from 1, and its error) before the re-run.
    """
    for attempt in range(1, attempts + 1):
        try:
            with factory.begin() as session:
                return work(session)
        except sa.exc.OperationalError as exc:
            if attempt == attempts or not is_lock_conflict(exc):
                raise
            if on_retry is not None:
                on_retry(attempt, exc)
            if pause:
                time.sleep(pause * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")


@contextmanager
def session_scope(settings: Settings | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with session_factory(settings).begin() as session:
        yield session


def unreachable_database_message(exc: sa.exc.OperationalError, database_url: str) -> str:
    """One line: "database at <url> is not reachable: <reason>" (the password hidden)."""
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    reason = reason.removeprefix("connection failed: ")
    return f"database at {mask_secrets(database_url)} is not reachable: {mask_secrets(reason, database_url)}"
