"""``papermail digest``: planning, sending, previewing and inspecting digests."""

from collections.abc import Sequence

import click
from rich.table import Table

from papermail.admin.deliveries import DeliveryRow, latest_period_key, period_status
from papermail.cli.base import cli_session
from papermail.cli.options import period_option
from papermail.cli.output import (
    counts_table,
    echo_json,
    json_option,
    print_tables,
    status_text,
    table,
    unchanged,
    warn,
)


@click.group()
def digest() -> None:
    """Digest commands: plan, send, status and preview."""


# -- plan, send and status: the admin's view of a period (issue 8) --------------------------------


def _delivery_table(title: str, rows: Sequence[DeliveryRow]) -> Table:
    grid = table("email", "status", "attempts", "last reply", "updated", title=title)
    for row in rows:
        grid.add_row(
            row.email,
            status_text(row.status),
            str(row.attempts),
            row.last_smtp_reply or row.skip_reason or "",
            f"{row.updated_at:%Y-%m-%d %H:%M} UTC",
        )
    return grid


@digest.command()
@period_option
@json_option
def status(period: str | None, as_json: bool) -> None:
    """Show a period's deliveries by status, listing the failed, exhausted and uncertain ones."""
    with cli_session() as session:
        period = period or latest_period_key(session)
        if period is None:
            unchanged("no digest has been planned yet")
            return
        summary = period_status(session, period)
    if as_json:
        echo_json(summary.as_dict())
        return
    tables = [counts_table(f"Deliveries, period {period}", summary.counts)]
    if summary.undelivered:
        undelivered = _delivery_table("Not delivered", summary.undelivered)
        undelivered.caption = f"resend them with: papermail resend --period {period} --failed"
        tables.append(undelivered)
    print_tables(*tables)
    if summary.paused_at:
        warn(f"sending is paused since {summary.paused_at:%Y-%m-%d %H:%M} UTC: {summary.pause_reason}")
