"""``papermail demo load`` / ``demo remove``: try papermail offline with a bundled sample of real papers."""

from __future__ import annotations

import dataclasses

import click

from papermail import clock, demo
from papermail.cli.base import CommandError, cli_session, settings_or_exit
from papermail.cli.options import cli_actor
from papermail.cli.output import changed, echo_json, json_option, unchanged
from papermail.db import migrate

# The way out of a refusal: the papers here are real, so rank them, or give the demo its own data.
DEMO_ELSEWHERE = (
    "see them with `papermail trending`, or try the demo in a data directory of its own: "
    "`PAPERMAIL_DATA_DIR=var-demo scripts/up --demo`"
)


@click.group("demo")
def demo_group() -> None:
    """A bundled sample of real papers with a fortnight of signals, to try papermail offline."""


def load_into_database() -> demo.LoadResult:
    """Load the sample (``demo load`` and ``up --demo``); a database with real data is refused."""
    settings = settings_or_exit()
    with cli_session() as session:
        try:
            return demo.load_demo(session, settings, now=clock.now(), actor=cli_actor())
        except demo.DemoRefused as exc:
            raise CommandError(f"{exc}; {DEMO_ELSEWHERE}") from None


def report_load(result: demo.LoadResult) -> None:
    """One line saying what the load did."""
    if result.already:
        unchanged(
            f"the demo is already loaded ({result.papers} papers); `papermail demo remove` takes it out"
        )
    else:
        changed(
            f"loaded the demo: {result.papers} papers and {result.snapshots} signal snapshots, ranked as "
            f"scoring run {result.run_id}; try `papermail trending`"
        )


@demo_group.command()
@json_option
def load(as_json: bool) -> None:
    """Load the sample into an empty database (re-dated to now) and rank it."""
    migrate.upgrade(settings_or_exit())  # a brand-new install has no tables yet; safe to repeat
    result = load_into_database()
    if as_json:
        echo_json(dataclasses.asdict(result))
    else:
        report_load(result)


@demo_group.command()
@json_option
def remove(as_json: bool) -> None:
    """Delete exactly what `demo load` loaded; papers a real fetch has seen since stay."""
    settings = settings_or_exit()
    with cli_session() as session:
        result = demo.remove_demo(session, settings, actor=cli_actor())
    if as_json:
        echo_json(dataclasses.asdict(result))
    elif not result.loaded:
        unchanged("the demo is not loaded; nothing to remove")
    else:
        kept = f"; kept {len(result.kept)} that a real fetch has seen since" if result.kept else ""
        changed(f"removed the demo: {result.papers} papers and {result.snapshots} signal snapshots{kept}")
