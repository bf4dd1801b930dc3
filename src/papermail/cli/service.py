"""Running papermail: ``config``, ``web``, ``worker``, ``beat``, and ``up`` for all three at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import click

from papermail import task_names
from papermail.celery_app import get_celery
from papermail.cli.base import settings_or_exit
from papermail.cli.demo import load_into_database, report_load
from papermail.cli.options import require_free_port
from papermail.cli.output import echo_json, json_option
from papermail.config import setting_sources
from papermail.db import migrate

quiet_option = click.option("--quiet", is_flag=True, help="Leave out Celery's start-up banner.")
PROCESS_COLOURS = {"web": "cyan", "worker": "green", "beat": "magenta"}
SHUTDOWN_GRACE_SECONDS = 10


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
    """Serve the web pages with gunicorn."""
    settings_or_exit()
    require_free_port(bind)
    argv = [
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
        # Link tokens in URLs are secrets: the access log shows "/unsubscribe/…" instead.
        "--logger-class",
        "papermail.web.logs.RedactingLogger",
    ]
    os.execv(sys.executable, argv)  # noqa: S606 - replace this process with gunicorn


@click.command()
@click.option("--concurrency", "-c", default=2, show_default=True, help="Worker processes.")
@click.option("--loglevel", default="INFO", show_default=True)
@quiet_option
def worker(concurrency: int, loglevel: str, quiet: bool) -> None:
    """Run a Celery worker (run as many as you like, on as many machines)."""
    settings = settings_or_exit()
    get_celery().start(
        [
            *(["--quiet"] if quiet else []),
            "worker",
            "--loglevel",
            loglevel,
            "--concurrency",
            str(concurrency),
            "--queues",
            settings.celery_queue,
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
    """Run the Celery beat scheduler (run exactly one)."""
    settings = settings_or_exit()
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # the embedded broker's file lives there too
    if catch_up:
        _request_catch_up()
    schedule_file = settings.data_dir / "celerybeat-schedule"
    quietly = ["--quiet"] if quiet else []
    get_celery().start([*quietly, "beat", "--loglevel", loglevel, "--schedule", str(schedule_file)])


@click.command()
@click.option("--bind", default="127.0.0.1:8000", show_default=True, help="host:port for the web.")
@click.option(
    "--demo", is_flag=True, help="Load the bundled sample first (empty database only); no catch-up."
)
def up(bind: str, demo: bool) -> None:
    """Run everything on this machine (migrate, then web, worker and beat) until Ctrl-C."""
    settings = settings_or_exit()
    require_free_port(bind)
    migrate.upgrade(settings)
    if demo:
        report_load(load_into_database())
    click.echo(f"papermail: database {settings.database_url}")
    click.echo(f"papermail: broker   {settings.broker_url}")
    click.echo(f"papermail: mail     {settings.mail_url}")
    click.echo(f"papermail: open http://{bind}/  (Ctrl-C stops everything)")
    commands = {
        "web": ["web", "--bind", bind, "--workers", "2"],
        "worker": ["worker", "--concurrency", "2", "--quiet"],
        "beat": ["beat", "--quiet", "--no-catch-up" if demo else "--catch-up"],
    }
    children = {name: _spawn(name, args) for name, args in commands.items()}
    try:
        while all(child.poll() is None for child in children.values()):
            time.sleep(0.5)
        dead = [name for name, child in children.items() if child.poll() is not None]
        click.secho(f"papermail: {', '.join(dead)} stopped; shutting down", fg="red", err=True)
        exit_code = 1
    except KeyboardInterrupt:
        click.echo("papermail: stopping")
        exit_code = 0
    _stop(children.values())
    sys.exit(exit_code)


def _request_catch_up() -> None:
    """Ask a worker to catch up on stale data; a broker that is down must not keep beat from starting."""
    try:
        get_celery().send_task(task_names.CATCH_UP)
    except Exception as exc:  # the schedule still fetches; say why the catch-up is missing
        click.echo(f"papermail: could not queue the catch-up on start: {exc}", err=True)


def _spawn(name: str, args: list[str]) -> subprocess.Popen[bytes]:
    child = subprocess.Popen(
        [sys.executable, "-m", "papermail", *args],
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


def _stop(children) -> None:
    children = list(children)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
