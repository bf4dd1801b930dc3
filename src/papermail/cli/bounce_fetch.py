"""``papermail bounces fetch``: take the reports waiting in the IMAP bounce mailbox now."""

from __future__ import annotations

import click

from papermail.bounces.imap_intake import MailboxError, fetch_mailbox
from papermail.cli.base import CommandError, settings_or_exit
from papermail.cli.output import echo_json, json_option


@click.command("fetch")
@click.option("--limit", type=click.IntRange(1, 100_000), default=10_000, show_default=True)
@json_option
def fetch_command(limit: int, as_json: bool) -> None:
    """Store the reports in the PAPERMAIL_BOUNCE_IMAP_URL mailbox, then delete them there (beat does too)."""
    settings = settings_or_exit()
    try:
        result = fetch_mailbox(settings, limit=limit)
    except MailboxError as exc:
        raise CommandError(str(exc)) from None
    if as_json:
        echo_json(
            {"mailbox": result.mailbox, "stored": len(result.stored), "inbound_message_ids": result.stored}
        )
    else:
        click.echo(f"{result.mailbox}: stored {len(result.stored)} messages; workers process them now")
