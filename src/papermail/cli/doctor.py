"""``papermail doctor``: check configuration, database, broker, SMTP login and public addresses."""

from __future__ import annotations

import click
from rich.text import Text

from papermail.admin.doctor import FAIL, OK, WARN, run_checks
from papermail.cli.base import EXIT_FAILED
from papermail.cli.output import STATUS_STYLES, echo_json, json_option, print_tables, table

MARKS = {OK: "✓ ok", WARN: "! warn", FAIL: "✗ fail"}


@click.command()
@click.option(
    "--worker",
    "worker_timeout",
    type=float,
    is_flag=False,
    flag_value=30.0,
    default=10.0,
    show_default=True,
    metavar="[SECONDS]",
    help="How long to wait for a worker to run a task (--worker alone: 30; --worker 0 skips the check).",
)
@json_option
@click.pass_context
def doctor(ctx: click.Context, worker_timeout: float | None, as_json: bool) -> None:
    """Check that papermail can do its job here; exit 1 if any check fails. Sends nothing."""
    checks = run_checks(worker_timeout=worker_timeout or None)
    failed = [check for check in checks if check.status == FAIL]
    if as_json:
        echo_json({"ok": not failed, "checks": [check.as_dict() for check in checks]})
    else:
        grid = table("check", "result", "detail")
        for check in checks:
            grid.add_row(
                check.name, Text(MARKS[check.status], style=STATUS_STYLES[check.status]), check.detail
            )
        warned = sum(check.status == WARN for check in checks)
        grid.caption = f"{len(failed)} failed, {warned} warnings, {len(checks) - len(failed) - warned} ok"
        print_tables(grid)
    if failed:
        ctx.exit(EXIT_FAILED)
