"""Shared fixtures: real databases (SQLite and PostgreSQL), settings, and real worker processes.

Database tests run once per backend: the ``database`` fixture is parametrised over SQLite and
PostgreSQL. PostgreSQL is migrated once per run into a template database; each test that needs
committed data (other processes must see it) gets a fresh copy, and tests that don't share one
database inside a transaction that is rolled back afterwards.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dkim
import psycopg
import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, sync_playwright
from sqlalchemy.orm import Session

from papermail import config
from papermail.celery_app import reset_celery
from papermail.db import get_engine, migrate
from papermail.db.session import dispose_engines

REPO_ROOT = Path(__file__).resolve().parents[1]
SRC_DIR = REPO_ROOT / "src"
PG_ADMIN_DSN = os.environ.get("PAPERMAIL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("PAPERMAIL_TEST_REDIS", "redis://127.0.0.1:6379/0")
RUN_ID = uuid.uuid4().hex[:8]

# Fixtures that tests in several folders use, registered once for the whole suite (a folder's
# conftest.py is seen only below it); each module's helpers are imported from it directly.
pytest_plugins = [
    "tests.support.browser",
    "tests.support.feeds",
    "tests.support.send_env",
    "tests.support.trending",
    "tests.support.web",
]


def shared_fixtures_dir() -> Path:
    """The recorded real responses in ``../shared/fixtures`` (never copied into the repo)."""
    candidates = [REPO_ROOT.parent / "shared" / "fixtures", Path("/work/shared/fixtures")]
    if "PAPERMAIL_SHARED_FIXTURES" in os.environ:
        candidates.insert(0, Path(os.environ["PAPERMAIL_SHARED_FIXTURES"]))
    for path in candidates:
        if path.is_dir():
            return path
    raise RuntimeError(f"shared fixtures not found in {candidates}; set PAPERMAIL_SHARED_FIXTURES")


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    return shared_fixtures_dir()


# -- databases ------------------------------------------------------------------------------------


def _pg_admin() -> psycopg.Connection:
    try:
        return psycopg.connect(PG_ADMIN_DSN, autocommit=True)
    except psycopg.OperationalError as exc:  # fail loudly: CI must never skip PostgreSQL
        raise RuntimeError(f"PostgreSQL is required for the tests ({PG_ADMIN_DSN}): {exc}") from exc


def _pg_url(name: str) -> str:
    base = sa.engine.make_url(PG_ADMIN_DSN).set(drivername="postgresql+psycopg", database=name)
    return base.render_as_string(hide_password=False)


@dataclass
class Database:
    """A migrated template database (never used directly) and ``url``, a shared working copy.

    ``fresh()`` hands out another independent copy, for tests whose data other processes must see.
    """

    backend: str
    template_url: str
    tmp_dir: Path
    url: str = ""

    def __post_init__(self) -> None:
        self.url = self.fresh()

    def fresh(self) -> str:
        """A new, migrated, empty database URL (committed data in it is visible to subprocesses)."""
        name = f"pm_{RUN_ID}_{uuid.uuid4().hex[:8]}"
        if self.backend == "sqlite":
            path = self.tmp_dir / f"{name}.db"
            src = sa.engine.make_url(self.template_url).database
            path.write_bytes(Path(src).read_bytes())
            return f"sqlite:///{path}"
        template = sa.engine.make_url(self.template_url).database
        with _pg_admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        _created_pg_databases.append(name)
        return _pg_url(name)


_created_pg_databases: list[str] = []


BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def databases(tmp_path_factory) -> Callable[[str], Database]:
    """``databases("sqlite")`` or ``databases("postgresql")``: a migrated database for this run."""
    made: dict[str, Database] = {}

    def get(backend: str) -> Database:
        if backend not in made:
            made[backend] = _make_template_database(backend, tmp_path_factory.mktemp(f"db-{backend}"))
        return made[backend]

    return get


def _make_template_database(backend: str, tmp_dir: Path) -> Database:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_dir / 'template.db'}"
    else:
        name = f"pm_{RUN_ID}_template"
        with _pg_admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        _created_pg_databases.append(name)
        url = _pg_url(name)
    migrate.upgrade(make_settings(tmp_dir, database_url=url))
    # PostgreSQL copies a template only when nobody is connected; SQLite must checkpoint its WAL.
    get_engine(url).dispose()
    return Database(backend, url, tmp_dir)


@pytest.fixture(scope="session", params=BACKENDS)
def database(request, databases) -> Database:
    """The migrated database of each backend in turn: tests using it run on both."""
    return databases(request.param)


@pytest.fixture(scope="session", autouse=True)
def _drop_test_databases() -> Iterator[None]:
    yield
    dispose_engines()
    if _created_pg_databases:
        with _pg_admin() as admin:
            for name in reversed(_created_pg_databases):
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    """A session whose work is rolled back after the test (commits become savepoints)."""
    engine = get_engine(database.url)
    with engine.connect() as connection:
        transaction = connection.begin()
        with Session(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        ) as db_session:
            yield db_session
        transaction.rollback()


# -- settings -------------------------------------------------------------------------------------


def settings_environ(data_dir: Path, **overrides: str) -> dict[str, str]:
    """``PAPERMAIL_*`` variables for a test: isolated data dir, in-memory mail, fixed secret."""
    values = {
        "DATA_DIR": str(data_dir),
        "SECRET_KEY": "test-secret-key",
        "MAIL_URL": "memory:",
        "BASE_URL": "https://papermail.test",
        "FROM": "papermail <digest@papermail.test>",
        "POSTAL_ADDRESS": "1 Test Street, Testville",
        "CELERY_QUEUE": f"papermail-test-{RUN_ID}",
    }
    values.update({key.upper(): value for key, value in overrides.items()})
    return {config.PREFIX + key: value for key, value in values.items()}


def make_settings(data_dir: Path, **overrides: str) -> config.Settings:
    return config.load_settings(settings_environ(data_dir, **overrides))


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Iterator[config.Settings]:
    """Settings for the test's backend, installed as the process-wide settings."""
    current = make_settings(tmp_path, database_url=database.url)
    config.use_settings(current)
    reset_celery()
    yield current
    config.use_settings(None)
    reset_celery()


# -- browser --------------------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
# Headless Debian Chromium on a machine with no network: the background services would only fail.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright; missing Chromium fails the run, never skips it."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run scripts/services (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


# -- worker processes -----------------------------------------------------------------------------


def subprocess_env(environ: dict[str, str]) -> dict[str, str]:
    """The environment for a papermail subprocess: this checkout's code plus ``environ``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(config.PREFIX)}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC_DIR), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(environ)
    return env


class WorkerProcess:
    """A real ``papermail worker`` subprocess; logs go to a file shown when a test fails."""

    def __init__(
        self, environ: dict[str, str], log_path: Path, concurrency: int = 1, fault: str | None = None
    ) -> None:
        self.environ, self.log_path, self.concurrency, self.fault = environ, log_path, concurrency, fault
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        # A fault is installed by a launcher in tests/, never by anything under src/.
        launcher = ["tests.delivery.fault_injection", self.fault] if self.fault else ["papermail"]
        environ = {**self.environ, "PYTHONPATH": os.pathsep.join([str(SRC_DIR), str(REPO_ROOT)])}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    *launcher,
                    "worker",
                    "--concurrency",
                    str(self.concurrency),
                    "--loglevel",
                    "INFO",
                ],
                env=subprocess_env(environ),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, 9)
            self.process.wait(10)

    def stop(self) -> None:
        """Ask for a warm shutdown; a worker still polling the SQLite broker after 5 s is killed."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def free_port() -> int:
    """A loopback TCP port nobody listens on (yet)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers_ok(url: str) -> bool:
    """True if a GET of ``url`` answers 200 within a second."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1, message: str = "condition"):
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator:
    """Start real worker processes with a given environment; all are stopped after the test."""
    workers: list[WorkerProcess] = []

    def start(environ: dict[str, str], concurrency: int = 1, fault: str | None = None) -> WorkerProcess:
        worker = WorkerProcess(environ, tmp_path / f"worker-{len(workers)}.log", concurrency, fault)
        workers.append(worker.start())
        return worker

    yield start
    for worker in workers:
        worker.stop()


# -- DKIM -----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dkim_key(tmp_path_factory) -> tuple[Path, bytes]:
    """A fresh RSA key file and the DNS TXT record that publishes its public half."""
    directory = tmp_path_factory.mktemp("dkim")
    key = directory / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True, capture_output=True
    ).stdout
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def dkim_verifies(message: bytes, record: bytes) -> bool:
    """True if the message's DKIM signature verifies against the DNS ``record``."""
    return dkim.verify(message, dnsfunc=lambda name, timeout=5: record)
