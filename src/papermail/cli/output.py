"""Output for people and for scripts: rich tables, colours and progress bars, or JSON with ``--json``.

On a terminal, tables are coloured and long operations show a progress bar (on stderr, so stdout
stays clean). Piped output has no colour and no bar, and tables are wide enough not to fold rows,
so ``grep`` still works; scripts should use ``--json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

# One palette for delivery, subscriber, fetch and check statuses: red always means "look at this".
STATUS_STYLES = {
    "sent": "green",
    "active": "green",
    "ok": "green",
    "pending": "cyan",
    "sending": "cyan",
    "running": "cyan",
    "retry": "yellow",
    "partial": "yellow",
    "warn": "yellow",
    "skipped": "dim",
    "unsubscribed": "dim",
    "failed": "bold red",
    "fail": "bold red",
    "exhausted": "red",
    "bounced": "red",
    "uncertain": "magenta",
}
# Piped output: wide enough that a table row never folds onto a second line.
PIPED_WIDTH = 240

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of a table."
)


def console(*, stderr: bool = False) -> Console:
    """A console on the current stdout (or stderr); made per command so test runners can capture it."""
    out = Console(stderr=stderr, highlight=False)
    if not out.is_terminal:
        out.width = PIPED_WIDTH
    return out


def status_text(status: str) -> Text:
    """A status word in its colour."""
    return Text(str(status), style=STATUS_STYLES.get(str(status), ""))


def table(*columns: str, title: str | None = None) -> Table:
    """A table with these column headings; numeric-looking headings are right-aligned by the caller."""
    grid = Table(
        title=title, title_justify="left", title_style="bold", header_style="bold", caption_justify="left"
    )
    for column in columns:
        grid.add_column(column, overflow="fold")
    return grid


def counts_table(title: str, counts: Mapping[str, int], *, heading: str = "status") -> Table:
    """A two-column table of counts by status, with a total row."""
    grid = table(heading, "count", title=title)
    grid.columns[1].justify = "right"
    for name, count in counts.items():
        grid.add_row(status_text(name), str(count))
    grid.add_row(Text("total", style="bold"), Text(str(sum(counts.values())), style="bold"))
    return grid


def print_tables(*tables: Table) -> None:
    """Print tables one after another on stdout."""
    out = console()
    for grid in tables:
        # A narrow table would otherwise fold its own title and caption into a column of words.
        labels = [str(grid.title or ""), *str(grid.caption or "").splitlines()]
        grid.min_width = min(out.width, max(len(label) for label in labels) + 2)
        out.print(grid)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(data: Any) -> str:
    """``data`` as indented JSON; datetimes become ISO 8601 strings."""
    return json.dumps(data, indent=2, ensure_ascii=False, default=_json_default)


def echo_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout."""
    click.echo(to_json(data))


def echo_json_array(items: Iterable[Any]) -> None:
    """Print a JSON array one element at a time, so a large listing never sits in memory."""
    click.echo("[", nl=False)
    for index, item in enumerate(items):
        click.echo(("," if index else "") + "\n  " + to_json(item).replace("\n", "\n  "), nl=False)
    click.echo("\n]")


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """``1 delivery``, ``2 deliveries``: a count with its noun in the right number."""
    return f"{count:,} {singular if count == 1 else plural_form or singular + 's'}"


def changed(message: str) -> None:
    """Report a change the command made (one line on stdout)."""
    console().print(Text("✓ ", style="green") + Text(message))


def unchanged(message: str) -> None:
    """Report that nothing needed changing (one line on stdout)."""
    console().print(Text("· ", style="dim") + Text(message))


def warn(message: str) -> None:
    """A warning that does not make the command fail (stderr)."""
    console(stderr=True).print(Text("! ", style="yellow") + Text(message))


class ProgressBar:
    """A handle on one progress bar: ``advance`` by a step, or ``update`` to absolute numbers."""

    def __init__(self, progress: Progress, task_id: Any) -> None:
        self._progress, self._task = progress, task_id

    def advance(self, steps: int = 1) -> None:
        self._progress.advance(self._task, steps)

    def update(self, *, completed: int, total: int | None = None, description: str | None = None) -> None:
        self._progress.update(self._task, completed=completed, total=total, description=description)


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[ProgressBar]:
    """A progress bar on stderr while the block runs; nothing at all when stderr is not a terminal."""
    err = console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as progress:
        yield ProgressBar(progress, progress.add_task(description, total=total))
