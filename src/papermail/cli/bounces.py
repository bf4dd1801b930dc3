"""``papermail bounces``: import reports from a mailbox, list the verdicts, show one with its report."""

from __future__ import annotations

from pathlib import Path

import click

from papermail.bounces.imports import (
    ImportReport,
    UnreadablePath,
    event_with_message,
    import_paths,
    list_events,
)
from papermail.cli.base import CommandError, settings_or_exit
from papermail.cli.output import changed, console, echo_json, json_option, print_tables, table, unchanged
from papermail.db import session_factory


@click.group()
def bounces() -> None:
    """Bounces and complaints: import reports, list verdicts, show one."""


@bounces.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would happen; change nothing.")
@json_option
def import_command(paths: tuple[Path, ...], dry_run: bool, as_json: bool) -> None:
    """Read reports from PATHs (a file with one message, a Maildir, or an mbox) and act on them."""
    settings = settings_or_exit()
    with session_factory(settings)() as session:
        try:
            report = import_paths(session, settings, list(paths))
        except UnreadablePath as exc:
            raise CommandError(str(exc)) from None
        if dry_run:
            session.rollback()
        else:
            session.commit()
    if as_json:
        echo_json(report.as_json())
    else:
        _print_import(report, dry_run)


def _print_import(report: ImportReport, dry_run: bool) -> None:
    rows = table("source", "kind", "address", "status", "verdict", "action")
    for source, result in report.messages:
        for recipient in result.recipients or [None]:
            if recipient is None:
                rows.add_row(source, result.kind.value, "", "", "", "")
            else:
                rows.add_row(
                    source,
                    result.kind.value,
                    recipient.address,
                    recipient.status or "",
                    recipient.verdict.value,
                    recipient.action.value,
                )
    print_tables(rows)
    totals = report.totals()
    summary = ", ".join(f"{count} {kind}" for kind, count in totals["kinds"].items()) or "nothing"
    if dry_run:
        unchanged(f"{totals['messages']} messages: {summary}; nothing changed (--dry-run)")
    else:
        changed(f"imported {totals['messages']} messages: {summary}")


@bounces.command("list")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@json_option
def list_command(limit: int, as_json: bool) -> None:
    """The latest verdicts, newest first."""
    settings = settings_or_exit()
    with session_factory(settings)() as session:
        events = list_events(session, limit)
        records = [_event_record(event) for event in events]
    if as_json:
        echo_json(records)
        return
    rows = table("id", "recorded", "address", "verdict", "status", "action", "reporting MTA")
    for record in records:
        rows.add_row(
            str(record["id"]),
            record["recorded_at"][:16],
            record["address"],
            record["verdict"],
            record["status"] or "",
            record["action"],
            record["reporting_mta"] or "",
        )
    print_tables(rows)


@bounces.command("show")
@click.argument("event_id", type=int)
@json_option
def show_command(event_id: int, as_json: bool) -> None:
    """One verdict, with the raw report it came from (kept 90 days)."""
    settings = settings_or_exit()
    with session_factory(settings)() as session:
        try:
            event, message = event_with_message(session, event_id)
        except LookupError as exc:
            raise CommandError(str(exc)) from None
        record = _event_record(event)
        raw = message.raw.decode("utf-8", "replace") if message is not None else None
        if message is not None:
            record |= {
                "via": message.via,
                "received_at": message.received_at.isoformat(),
                "kind": message.kind,
            }
    if as_json:
        echo_json({**record, "raw": raw})
        return
    out = console()
    for key, value in record.items():
        out.print(f"{key}: {value if value is not None else ''}", markup=False, highlight=False)
    out.print("", markup=False)
    out.print(raw if raw is not None else "(the raw report is gone: kept 90 days)", markup=False)


def _event_record(event) -> dict:
    return {
        "id": event.id,
        "recorded_at": event.recorded_at.isoformat(),
        "address": event.address,
        "verdict": event.verdict.value,
        "status": event.status,
        "diagnostic": event.diagnostic,
        "reporting_mta": event.reporting_mta,
        "action": event.action,
        "subscriber_id": event.subscriber_id,
        "delivery_id": event.delivery_id,
        "confirmation_id": event.confirmation_id,
        "provider": event.provider,
    }
