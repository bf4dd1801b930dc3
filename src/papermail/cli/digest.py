"""``papermail digest``: planning, sending, previewing and inspecting digests."""

from pathlib import Path

import click

from papermail import clock
from papermail.cli.base import CommandError, cli_session, settings_or_exit
from papermail.digest.preview import NothingToPreview, current_period_key, preview_digest
from papermail.digest.render import describe_period
from papermail.mail.message import build_message, make_message_id
from papermail.subscribers import InvalidInput, find_by_email, normalise_email

PREVIEW_SUFFIXES = (".html", ".eml")


@click.group()
def digest() -> None:
    """Digest commands: plan, send, status and preview."""


def _period_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        describe_period(value)
    except ValueError:
        raise click.BadParameter(
            f"period {value} is not a valid ISO week (2026-W48) or date (2026-11-26)"
        ) from None
    return value


def _out_option(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    if value is not None and value.suffix.lower() not in PREVIEW_SUFFIXES:
        raise click.BadParameter("must end in .html (the HTML part) or .eml (the whole message)")
    return value


@digest.command()
@click.argument("email")
@click.option("--period", callback=_period_option, help="2026-W48 or 2026-11-26 (default: this period).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=_out_option,
    help="Write FILE.html (the HTML part) or FILE.eml (the whole message) instead of printing the text.",
)
def preview(email: str, period: str | None, out: Path | None) -> None:
    """Show the digest EMAIL gets for a period, exactly as it would be sent. Sends nothing."""
    settings = settings_or_exit()
    try:
        address = normalise_email(email)
    except InvalidInput as exc:
        raise click.BadParameter(str(exc), param_hint="EMAIL") from None
    with cli_session() as session:
        subscriber = find_by_email(session, address)
        if subscriber is None:
            raise CommandError(f"no subscriber {address}")
        period_key = period or current_period_key(subscriber, clock.now())
        try:
            shown = preview_digest(session, settings, subscriber, period_key)
        except NothingToPreview as exc:
            raise CommandError(str(exc)) from None
        source = (
            "planned delivery" if shown.delivery else f"not planned yet; chosen now from run {shown.run_id}"
        )
        if shown.email is None:
            click.echo(f"no digest for {address} in {period_key} ({source}): {shown.skip_reason}")
            return
        if out is None:
            click.echo(f"Subject: {shown.email.subject}\n({period_key}, {source})\n")
            click.echo(shown.email.text, nl=False)
            return
        if out.suffix.lower() == ".html":
            out.write_text(shown.email.html or "", encoding="utf-8")
        else:
            message_id = (shown.delivery and shown.delivery.message_id) or make_message_id(settings.mail_from)
            out.write_bytes(
                build_message(
                    shown.email, mail_from=settings.mail_from, message_id=message_id, date=clock.now()
                )
            )
        click.echo(f"wrote {out} ({period_key}, {source})")
