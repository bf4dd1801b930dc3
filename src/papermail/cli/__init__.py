"""The ``papermail`` command line. Each area's commands live in their own module."""

from __future__ import annotations

import atexit
import gc
import logging
import sys

import click

from papermail.cli import (
    bounce_fetch,
    bounces,
    db,
    demo,
    digest,
    doctor,
    fetch,
    resend,
    service,
    stats,
    subscribers,
    topics,
    trending,
)
from papermail.cli.base import PapermailGroup
from papermail.redaction import mask_log_handlers


@click.group(cls=PapermailGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="papermail", prog_name="papermail", message="%(prog)s %(version)s")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option("--verbose", "-v", is_flag=True, help="Show the log (INFO and up) beside the output.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: bool) -> None:
    """papermail: the week's trending research papers in your inbox."""
    ctx.ensure_object(dict)["debug"] = debug
    # A command's output is its own words; the log joins it only when asked for.
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    mask_log_handlers()
    # Alembic narrates every connection at INFO; its upgrade result is reported by our command.
    logging.getLogger("alembic").setLevel(logging.DEBUG if debug else logging.WARNING)
    # Commands report what they did themselves; per-request and per-run log lines only repeat it.
    for name in ("httpx", "papermail.sources.runner"):
        logging.getLogger(name).setLevel(logging.DEBUG if debug else logging.WARNING)


cli.add_command(bounces.bounces)
bounces.bounces.add_command(bounce_fetch.fetch_command)
cli.add_command(db.db)
cli.add_command(demo.demo_group)
cli.add_command(digest.digest)
cli.add_command(fetch.fetch)
cli.add_command(subscribers.subscribers)
cli.add_command(stats.stats)
cli.add_command(doctor.doctor)
cli.add_command(resend.resend)
cli.add_command(service.config)
cli.add_command(service.secret)
cli.add_command(service.up)
cli.add_command(service.worker)
cli.add_command(service.beat)
cli.add_command(service.web)
cli.add_command(service.inbound)
cli.add_command(trending.score)
cli.add_command(trending.trending_ranking)
cli.add_command(topics.topics)


def main() -> None:
    """Console-script entry point."""
    # The interpreter's last collections at exit walk every object the imports made, which takes
    # long enough (about half a second) to slow every stop; nothing left by then needs collecting.
    atexit.register(gc.freeze)
    cli()
