"""Running papermail: ``config``, ``web``, ``worker``, ``beat``, and ``up`` for all three at once."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from datetime import timedelta

import click

from papermail import task_names
from papermail.celery_app import declare_embedded_queue, get_celery, worker_queues
from papermail.cli.base import CommandError, cli_session, settings_or_exit
from papermail.cli.demo import load_into_database, report_load
from papermail.cli.options import require_free_port
from papermail.cli.output import echo_json, json_option
from papermail.config import PREFIX, environment, make_secret, setting_sources, use_settings
from papermail.config.parsers import split_host_port
from papermail.db import leases, migrate

quiet_option = click.option("--quiet", is_flag=True, help="Leave out Celery's start-up banner.")
PROCESS_COLOURS = {"web": "cyan", "worker": "green", "beat": "magenta", "inbound": "yellow"}
SHUTDOWN_GRACE_SECONDS = 10
INBOUND_BIND = "127.0.0.1:2525"
# What `up` passes on to its children when it is told to stop. SIGHUP means "reload" to gunicorn
# and celery, but "the terminal is gone, stop" to us, so children get SIGTERM for it.
FORWARDED_SIGNALS = {
    signal.SIGTERM: signal.SIGTERM,
    signal.SIGINT: signal.SIGINT,
    signal.SIGHUP: signal.SIGTERM,
}

# Set by `up` in its children's environment (not a setting): the pid they must not outlive.
UP_PID_VARIABLE = "PAPERMAIL_UP_PID"
PR_SET_PDEATHSIG = 1  # linux/prctl.h

log = logging.getLogger(__name__)


def _die_with_up() -> None:
    """In a child of `up`: have the kernel send SIGTERM when `up` dies, even by SIGKILL."""
    parent = os.environ.pop(UP_PID_VARIABLE, None)  # popped: grandchildren follow their own parent
    if parent is None or not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(parent):  # `up` died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


BASE_URL_VARIABLE = f"{PREFIX}BASE_URL"
# Hosts that mean "every interface": a browser can't open them, so links name this machine instead.
WILDCARD_HOSTS = ("0.0.0.0", "::", "[::]", "")  # noqa: S104 - compared, never bound


def url_of_bind(bind: str) -> str:
    """The http URL a browser on this machine opens for ``host:port``."""
    host, _, port = bind.rpartition(":")
    return f"http://{'localhost' if host in WILDCARD_HOSTS else host}:{port}"


def links_follow_bind(bind: str) -> str:
    """Derive PAPERMAIL_BASE_URL from ``--bind`` unless it is set; return the banner line saying which."""
    chosen = environment().get(BASE_URL_VARIABLE, "")
    derived = url_of_bind(bind)
    if not chosen:
        # In the environment, so the web, worker and beat started from here all build the same links.
        os.environ[BASE_URL_VARIABLE] = derived
        use_settings(None)
        return f"links in emails {derived}  (from --bind; set {BASE_URL_VARIABLE} to choose another)"
    if chosen.rstrip("/") != derived:
        return f"links in emails {chosen}  ({BASE_URL_VARIABLE}; not --bind {bind}, which serves {derived})"
    return f"links in emails {chosen}  ({BASE_URL_VARIABLE})"


@click.command()
def secret() -> None:
    """Print a new random secret key for PAPERMAIL_SECRET_KEY (64 characters, 384 bits)."""
    click.echo(make_secret())


@click.command()
@json_option
def config(as_json: bool) -> None:
    """Show each PAPERMAIL_* setting in effect and where it came from (environment, .env, default)."""
    settings_or_exit()
    sources = setting_sources()
    if as_json:
        echo_json({s.variable: {"value": s.value, "source": s.source} for s in sources})
        return
    width = max(len(s.variable) for s in sources)
    for s in sources:
        click.echo(f"{s.variable:{width}}  {s.value}  ({s.source})")


@click.command()
@click.option("--bind", default="127.0.0.1:8000", show_default=True, help="host:port to listen on.")
@click.option("--workers", default=2, show_default=True, help="gunicorn worker processes.")
def web(bind: str, workers: int) -> None:
    """Serve the web pages with gunicorn (links in emails follow --bind unless PAPERMAIL_BASE_URL is set)."""
    settings_or_exit()
    require_free_port(bind)
    links = links_follow_bind(bind)
    if UP_PID_VARIABLE not in os.environ:  # `up` printed it already
        click.echo(f"papermail: {links}")
    settings_or_exit()  # a derived URL is checked like a given one
    _die_with_up()  # kept across the exec below
    argv = gunicorn_argv(bind, workers)
    os.execv(sys.executable, argv)  # noqa: S606 - replace this process with gunicorn


def gunicorn_argv(bind: str, workers: int) -> list[str]:
    """The command line ``papermail web`` runs gunicorn with."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "papermail.web:create_app()",
        "--bind",
        bind,
        "--workers",
        str(workers),
        "--access-logfile",
        "-",
        # Gunicorn trusts X-Forwarded-Proto from 127.0.0.1 by default; forwarded headers are the
        # app's business, trusted only with PAPERMAIL_PROXY_COUNT > 0 (ProxyFix, papermail.web).
        "--forwarded-allow-ips",
        "",
        # Link tokens in URLs are secrets: the access log shows "/unsubscribe/…" instead.
        "--logger-class",
        "papermail.web.logs.RedactingLogger",
        # Its control socket sits in $HOME/.gunicorn, shared by every instance of the user.
        "--no-control-socket",
        # Hooks only: the settings are all on this command line.
        "--config",
        "python:papermail.web.server_hooks",
    ]


@click.command()
@click.option("--concurrency", "-c", default=2, show_default=True, help="Worker processes.")
@click.option("--loglevel", default="INFO", show_default=True)
@quiet_option
def worker(concurrency: int, loglevel: str, quiet: bool) -> None:
    """Run a Celery worker (run as many as you like, on as many machines)."""
    settings = settings_or_exit()
    _die_with_up()
    declare_embedded_queue(settings)
    get_celery().start(
        [
            *(["--quiet"] if quiet else []),
            "worker",
            "--loglevel",
            loglevel,
            "--concurrency",
            str(concurrency),
            "--queues",
            ",".join(worker_queues(settings)),
            "--without-gossip",
            "--without-mingle",
        ]
    )


@click.command()
@click.option("--loglevel", default="INFO", show_default=True)
@click.option(
    "--catch-up/--no-catch-up",
    default=True,
    show_default=True,
    help="On start, have a worker fetch stale sources now and backfill recent arXiv days.",
)
@quiet_option
def beat(loglevel: str, catch_up: bool, quiet: bool) -> None:
    """Run the Celery beat scheduler (exactly one per database: a second one refuses to start)."""
    settings = settings_or_exit()
    _die_with_up()
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # the embedded broker's file lives there too
    schedule_file = settings.data_dir / "celerybeat-schedule"
    lease = timedelta(seconds=settings.beat_lease_seconds)
    holder = leases.new_holder()
    with cli_session() as session:
        hold = leases.acquire(session, leases.BEAT, holder, lease)
    if hold.holder != holder:
        raise CommandError(
            f"another beat ({hold.holder}) holds the schedule for this database until "
            f"{hold.expires_at:%Y-%m-%d %H:%M:%S} UTC: stop it first "
            "(a killed beat's hold runs out by itself)"
        )
    declare_embedded_queue(settings)
    if catch_up:  # only the beat that holds the schedule asks
        _request_catch_up()
    stopped = threading.Event()
    renewer = threading.Thread(target=_renew_beat_lease, args=(holder, lease, stopped), daemon=True)
    renewer.start()
    try:
        quietly = ["--quiet"] if quiet else []
        get_celery().start([*quietly, "beat", "--loglevel", loglevel, "--schedule", str(schedule_file)])
    finally:
        stopped.set()
        renewer.join()
        with cli_session() as session:
            leases.release(session, leases.BEAT, holder)


def _renew_beat_lease(holder: str, lease: timedelta, stopped: threading.Event) -> None:
    # Renewed at a third of its length, so two failed renewals in a row still leave it held.
    while not stopped.wait(lease.total_seconds() / 3):
        try:
            with cli_session() as session:
                still_ours = leases.renew(session, leases.BEAT, holder, lease)
        except Exception as exc:  # the database is away: keep trying until the lease runs out
            log.warning("beat: could not renew its hold on the schedule: %s", exc)
            continue
        if not still_ours:
            log.error("beat: another beat took over the schedule; stopping this one")
            os.kill(os.getpid(), signal.SIGTERM)
            return


@click.command()
@click.option("--bind", help=f"host:port to listen on  [default: PAPERMAIL_INBOUND_BIND or {INBOUND_BIND}]")
def inbound(bind: str | None) -> None:
    """Receive bounces and complaints by SMTP, for PAPERMAIL_BOUNCE_ADDRESS and its VERP forms only."""
    # Imported here: every other command (and each process `up` starts) would load aiosmtpd for nothing.
    from papermail.bounces.smtp_intake import InboundServer

    settings = settings_or_exit()
    if settings.bounce_address is None:
        raise CommandError("set PAPERMAIL_BOUNCE_ADDRESS first: it is the only address this server takes")
    bind = bind or settings.inbound_bind or INBOUND_BIND
    require_free_port(bind)
    _die_with_up()
    stopped = threading.Event()
    for received in FORWARDED_SIGNALS:
        signal.signal(received, lambda _signum, _frame: stopped.set())
    try:
        host, port = split_host_port(bind)
    except ValueError as exc:
        raise ValueError(f"--bind {exc}") from None
    server = InboundServer(settings, host, port)
    server.start()
    click.echo(f"papermail inbound: taking bounces for {settings.bounce_address} on {bind}", err=True)
    stopped.wait()
    server.stop()
    click.echo("papermail inbound: stopped", err=True)


@click.command()
@click.option("--bind", default="127.0.0.1:8000", show_default=True, help="host:port for the web.")
@click.option(
    "--demo", is_flag=True, help="Load the bundled sample first (empty database only); no catch-up."
)
def up(bind: str, demo: bool) -> None:
    """Run everything on this machine (migrate, then web, worker and beat) until Ctrl-C.

    Links in emails point at --bind unless PAPERMAIL_BASE_URL is set. With PAPERMAIL_INBOUND_BIND
    set, the inbound SMTP server for bounces runs too.
    """
    require_free_port(bind)
    links = links_follow_bind(bind)
    settings = settings_or_exit()
    migrate.upgrade(settings)
    if demo:
        report_load(load_into_database())
    declare_embedded_queue(settings)  # before web, worker and beat race to create it
    shown = settings.masked()
    click.echo(f"papermail: database {shown['database_url']}")
    click.echo(f"papermail: broker   {shown['broker_url']}")
    click.echo(f"papermail: mail     {shown['mail_url']}")
    click.echo(f"papermail: {links}")
    click.echo(f"papermail: open {url_of_bind(bind)}/  (Ctrl-C stops everything)")
    commands = {
        "web": ["web", "--bind", bind, "--workers", "2"],
        "worker": ["worker", "--concurrency", "2", "--quiet"],
        "beat": ["beat", "--quiet", "--no-catch-up" if demo else "--catch-up"],
    }
    if settings.inbound_bind:
        require_free_port(settings.inbound_bind)
        click.echo(f"papermail: bounces by SMTP on {settings.inbound_bind}")
        commands["inbound"] = ["inbound", "--bind", settings.inbound_bind]
    asked_to_stop: list[signal.Signals] = []
    for received in FORWARDED_SIGNALS:
        # Record the signal and let the loop below stop the children: docker, systemd and
        # supervisord send SIGTERM, a closed terminal SIGHUP, Ctrl-C SIGINT.
        signal.signal(received, lambda signum, _frame: asked_to_stop.append(signal.Signals(signum)))
    # A signal also writes a byte to this pipe, so the wait below ends the moment one arrives.
    woken, wake = os.pipe()
    os.set_blocking(wake, False)
    signal.set_wakeup_fd(wake)
    children = {name: _spawn(name, args) for name, args in commands.items()}
    while not asked_to_stop and all(child.poll() is None for child in children.values()):
        select.select([woken], [], [], 0.2)
    if asked_to_stop:
        click.echo(f"papermail: {asked_to_stop[0].name} received; stopping {_listed(list(children))}")
        exit_code = 0
    else:
        dead = [name for name, child in children.items() if child.poll() is not None]
        click.secho(f"papermail: {', '.join(dead)} stopped; shutting down", fg="red", err=True)
        exit_code = 1
    _stop(children.values(), FORWARDED_SIGNALS[asked_to_stop[0]] if asked_to_stop else signal.SIGTERM)
    sys.exit(exit_code)


def _listed(names: list[str]) -> str:
    """``a, b and c``."""
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def _request_catch_up() -> None:
    """Ask a worker to catch up on stale data; a broker that is down must not keep beat from starting."""
    try:
        get_celery().send_task(task_names.CATCH_UP)
    except Exception as exc:  # the schedule still fetches; say why the catch-up is missing
        click.echo(f"papermail: could not queue the catch-up on start: {exc}", err=True)


def _spawn(name: str, args: list[str]) -> subprocess.Popen[bytes]:
    child = subprocess.Popen(
        [sys.executable, "-m", "papermail", *args],
        env={**os.environ, UP_PID_VARIABLE: str(os.getpid())},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        # Its own process group, so Ctrl-C reaches only us and we stop children in order.
        start_new_session=True,
    )
    prefix = click.style(f"{name:<7}|", fg=PROCESS_COLOURS[name])
    threading.Thread(target=_relay, args=(child, prefix), daemon=True).start()
    return child


def _relay(child: subprocess.Popen[bytes], prefix: str) -> None:
    assert child.stdout is not None
    for line in child.stdout:
        click.echo(f"{prefix} {line.decode('utf-8', 'replace').rstrip()}")


def _stop(children: Iterable[subprocess.Popen[bytes]], how: signal.Signals) -> None:
    """Signal every child, wait up to the grace period, then kill what remains of their groups."""
    children = list(children)
    for child in children:
        # The child alone: gunicorn and celery stop their own workers (a celery pool process that
        # got the signal itself would die mid-task and be logged as an error).
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(how)
    deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning(
                "papermail: pid %s did not stop within %ss; killing it", child.pid, SHUTDOWN_GRACE_SECONDS
            )
    # Every group, even of a child that exited: its own children (gunicorn's workers, celery's pool)
    # must not outlive it as orphans.
    for child in children:
        _signal_group(child, signal.SIGKILL)
        child.wait()


def _signal_group(child: subprocess.Popen[bytes], how: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is empty: everyone in it has exited
        os.killpg(child.pid, how)
