"""``papermail fetch``: fetch now, with a progress bar and a summary; ``papermail fetch log``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from papermail.cli.base import CommandError, cli_session, require_schema, settings_or_exit
from papermail.config import Settings
from papermail.db import writer_session_factory
from papermail.db.bookkeeping import FetchRun
from papermail.db.models import FetchStatus
from papermail.sources.fetch_runs import recent_runs
from papermail.sources.job import Progress as ReportProgress
from papermail.sources.runner import (
    ARXIV,
    BLUESKY,
    GITHUB,
    HACKERNEWS,
    HUGGINGFACE,
    PAPER_FETCHERS,
    SEMANTIC_SCHOLAR,
    SOURCES,
    FetchSummary,
    run_fetch,
    source_off_reason,
)

# The command line's short names for the sources, and "all".
SOURCE_NAMES = {
    "arxiv": ARXIV,
    "hf": HUGGINGFACE,
    "github": GITHUB,
    "hn": HACKERNEWS,
    "bluesky": BLUESKY,
    "s2": SEMANTIC_SCHOLAR,
    "all": None,
}
SOURCE_CHOICES = {name: (source,) if source else SOURCES for name, source in SOURCE_NAMES.items()}
COUNT_COLUMNS = ("new papers", "updated", "signals added", "rejected", "errors")


def _console() -> Console:
    """A console for tables: the terminal's width, or wide enough not to wrap when piped."""
    console = Console()
    return console if console.is_terminal else Console(width=max(console.width, 120))


def _table(title: str, *leading: str) -> Table:
    table = Table(title=title, title_justify="left")
    for header in leading:
        table.add_column(header, no_wrap=True)
    for header in COUNT_COLUMNS:
        table.add_column(header, justify="right", no_wrap=True)
    return table


def _counts(row: FetchSummary | FetchRun) -> list[str]:
    return [str(n) for n in (row.new_papers, row.updated_papers, row.signals_added, row.rejected, row.errors)]


def _say(console: Console, line: str) -> None:
    """One unwrapped, unstyled line (problem reasons come from feeds: never markup)."""
    console.print(line, markup=False, highlight=False, soft_wrap=True)


@click.group(invoke_without_command=True)
@click.option(
    "--source",
    type=click.Choice(list(SOURCE_CHOICES)),
    default="all",
    show_default=True,
    help="Which source to fetch.",
)
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Backfill one day (YYYY-MM-DD): arXiv submissions from the API, that day's Hugging Face list"
    " (the community sources have no backfill: they always read their last 14 to 60 days).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def fetch(ctx: click.Context, source: str, day: datetime | None, as_json: bool) -> None:
    """Fetch new papers and popularity signals now (see also: papermail fetch log)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_or_exit()
    require_schema(settings)
    console = _console()
    names = SOURCE_CHOICES[source]
    if source == "all":  # an unconfigured source is off, not failing; `doctor` says how to turn it on
        names = tuple(name for name in names if not source_off_reason(settings, name))
    if day:  # the community sources always read their recent days: nothing to backfill
        names = tuple(name for name in names if name in PAPER_FETCHERS)
        if not names:
            raise CommandError("--date backfills arXiv and Hugging Face only")
    with (
        _progress(console, enabled=console.is_terminal and not as_json) as report,
        ThreadPoolExecutor(max_workers=len(names)) as pool,
    ):
        # Both sources at once: each waits on its own network, in its own session.
        futures = [
            pool.submit(_fetch_one, settings, name, day.date() if day else None, report) for name in names
        ]
        summaries = [future.result() for future in futures]
    unfinished = [summary for summary in summaries if not summary.completed]
    if as_json:
        click.echo(json.dumps([summary.as_dict() for summary in summaries], indent=2))
    elif unfinished and not any(_brought_anything(summary) for summary in summaries):
        # Nothing got through (offline, say): one line with each failed source's reason, no empty
        # table (a community source with no papers to look up yet "succeeds" at doing nothing).
        reasons = "; ".join(f"{s.source}: {s.problems[0] if s.problems else s.status}" for s in unfinished)
        raise CommandError(f"fetch failed: {reasons}")
    else:
        _print_summary(console, summaries)
    if unfinished:
        raise CommandError(f"fetch did not complete for {', '.join(s.source for s in unfinished)}")


def _brought_anything(summary: FetchSummary) -> bool:
    """True when a run stored anything: a paper, an update or a signal."""
    return summary.completed and bool(summary.new_papers or summary.updated_papers or summary.signals_added)


def _fetch_one(
    settings: Settings, source: str, day: date | None, report: ReportProgress | None
) -> FetchSummary:
    """One source's run in its own session; an unexpected error fails that source, not the others."""
    with writer_session_factory(settings)() as session:
        try:
            return run_fetch(session, settings, source, day=day, progress=report)
        except Exception as exc:  # the run's log records it too; the next source still runs
            reason = f"the fetch stopped: {exc!r}"
            return FetchSummary(source, str(FetchStatus.FAILED), errors=1, problems=[reason], problem_count=1)


@contextmanager
def _progress(console: Console, *, enabled: bool) -> Iterator[ReportProgress | None]:
    """A progress callback for run_fetch: a rich bar per source on a terminal, else nothing."""
    if not enabled:
        yield None
        return
    columns = (
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[source]:<12}"),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        tasks: dict[str, Any] = {}

        def report(source: str, what: str, done: int, total: int | None) -> None:
            if source not in tasks:
                tasks[source] = progress.add_task(what, source=source, total=total)
            progress.update(tasks[source], description=what, completed=done, total=total)

        yield report


def _print_summary(console: Console, summaries: list[FetchSummary]) -> None:
    table = _table("fetch summary", "source", "status")
    for s in summaries:
        status = f"{s.status} (unchanged)" if s.unchanged_feeds and s.completed else s.status
        table.add_row(s.source, status, *_counts(s))
    console.print(table)
    for s in summaries:
        for problem in s.problems:
            _say(console, f"  {s.source}: {problem}")
        more = s.problem_count - len(s.problems)
        if more > 0:
            _say(console, f"  {s.source}: … and {more} more (papermail fetch log lists them)")


@fetch.command("log")
@click.option("--source", type=click.Choice(list(SOURCE_NAMES)), default="all", show_default=True)
@click.option("--limit", type=click.IntRange(1, 500), default=10, show_default=True, help="How many runs.")
@click.option("--json", "as_json", is_flag=True, help="Print the runs and their problems as JSON.")
def log(source: str, limit: int, as_json: bool) -> None:
    """Show the latest fetch runs and every problem they recorded."""
    with cli_session() as session:
        runs = recent_runs(session, source=SOURCE_NAMES[source], limit=limit)
        if as_json:
            click.echo(json.dumps([_run_dict(run) for run in runs], indent=2))
        elif not runs:
            click.echo("no fetch runs yet")
        else:
            _print_runs(_console(), runs)


def _run_dict(run: FetchRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "source": run.source,
        "status": str(run.status),
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "new_papers": run.new_papers,
        "updated_papers": run.updated_papers,
        "signals_added": run.signals_added,
        "rejected": run.rejected,
        "errors": run.errors,
        "problems": [
            {"kind": p.kind, "url": p.url, "entry": p.entry_ref, "reason": p.reason} for p in run.problems
        ],
    }


def _print_runs(console: Console, runs: list[FetchRun]) -> None:
    table = _table("fetch runs, newest first", "run", "source", "started (UTC)", "took", "status")
    for run in runs:
        took = f"{(run.finished_at - run.started_at).total_seconds():.1f}s" if run.finished_at else "running"
        started = f"{run.started_at:%Y-%m-%d %H:%M}"
        table.add_row(str(run.id), run.source, started, took, str(run.status), *_counts(run))
    console.print(table)
    for run in runs:
        for problem in run.problems:
            where = problem.entry_ref or problem.url or ""
            _say(console, f"  run {run.id} {problem.kind} {where}: {problem.reason}")
