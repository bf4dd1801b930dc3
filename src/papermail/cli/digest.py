"""``papermail digest``: planning, sending, previewing and inspecting digests."""

from collections.abc import Sequence
from pathlib import Path

import click
from rich.table import Table

from papermail import clock
from papermail.admin.deliveries import (
    IN_FLIGHT_STATUSES,
    UNDELIVERED_STATUSES,
    DeliveryRow,
    is_planned,
    latest_period_key,
    paused_periods,
    pending_ids,
    period_status,
    periods_of,
    status_counts,
    wait_until_drained,
)
from papermail.admin.nothing_yet import nothing_ranked_reason
from papermail.admin.subscribers import no_subscriber
from papermail.cli.base import CommandError, cli_session, settings_or_exit
from papermail.cli.options import (
    BadUsage,
    cli_actor,
    one_line_errors,
    period_option,
    period_option_defaulting,
)
from papermail.cli.output import (
    changed,
    counts_table,
    echo_json,
    json_option,
    plural,
    print_tables,
    progress_bar,
    status_text,
    table,
    unchanged,
    warn,
)
from papermail.delivery import plan as planning
from papermail.delivery.breaker import resume_digest
from papermail.delivery.upcoming import nobody_due_message
from papermail.digest.preview import NothingToPreview, default_period_key, preview_digest
from papermail.mail.message import build_message, make_message_id
from papermail.subscribers.core import InvalidInput, find_by_email, normalise_email

PREVIEW_SUFFIXES = (".html", ".eml")
PREVIEW_DEFAULT_PERIOD = (
    "EMAIL's most recently planned period; before their first, the period `digest send` "
    "would plan for them now (the one of their last send time)"
)
DUE_NOW = "what is due now (each active subscriber's last send time, if not planned yet)"
IN_FLIGHT = [status.value for status in IN_FLIGHT_STATUSES]
UNDELIVERED = [status.value for status in UNDELIVERED_STATUSES]


@click.group()
def digest() -> None:
    """Digest commands: plan, send, status and preview."""


def _out_option(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    if value is not None and value.suffix.lower() not in PREVIEW_SUFFIXES:
        raise BadUsage(f"--out {value}: must end in .html (the HTML part) or .eml (the whole message)")
    return value


@digest.command()
@click.argument("email")
@period_option_defaulting(PREVIEW_DEFAULT_PERIOD)
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=_out_option,
    help="Write FILE.html (the HTML part) or FILE.eml (the whole message) instead of printing the text.",
)
@json_option
def preview(email: str, period: str | None, out: Path | None, as_json: bool) -> None:
    """Show the digest EMAIL gets for a period, exactly as it would be sent. Sends nothing."""
    settings = settings_or_exit()
    try:
        address = normalise_email(email)
    except InvalidInput as exc:
        raise click.BadParameter(str(exc), param_hint="EMAIL") from None
    with cli_session() as session:
        subscriber = find_by_email(session, address)
        if subscriber is None:
            raise CommandError(no_subscriber(address))
        period_key = period or default_period_key(session, subscriber, clock.now())
        try:
            shown = preview_digest(session, settings, subscriber, period_key)
        except NothingToPreview:
            raise CommandError(f"nothing to preview: {nothing_ranked_reason(session)}") from None
        source = (
            "planned delivery" if shown.delivery else f"not planned yet; chosen now from run {shown.run_id}"
        )
        heading = f"{period_key} digest for {address} ({source})"
        if shown.email is None:
            nothing = f"no digest for {address} in {period_key} ({source}): {shown.skip_reason}"
            if out is not None:
                raise CommandError(f"{nothing}; wrote nothing to {out}")
            if as_json:
                echo_json(_preview_record(address, period_key, shown, None))
            else:
                click.echo(nothing)
            return
        if out is None:
            if as_json:
                echo_json(_preview_record(address, period_key, shown, shown.email))
            else:
                click.echo(f"{heading}\nSubject: {shown.email.subject}\n")
                click.echo(shown.email.text, nl=False)
            return
        _write_preview(settings, shown, out)
    if as_json:
        echo_json({**_preview_record(address, period_key, shown, None), "wrote": str(out)})
    else:
        click.echo(f"wrote {out}: the {heading}")


def _preview_record(address: str, period_key: str, shown, email) -> dict:
    """What ``preview --json`` prints: the period, where the papers come from, the message parts."""
    return {
        "email": address,
        "period_key": period_key,
        "planned": shown.delivery is not None,
        "run_id": shown.run_id,
        "skip_reason": shown.skip_reason,
        "subject": email.subject if email else None,
        "text": email.text if email else None,
        "html": email.html if email else None,
    }


def _write_preview(settings, shown, out: Path) -> None:
    if out.suffix.lower() == ".html":
        out.write_text(shown.email.html or "", encoding="utf-8")
        return
    message_id = (shown.delivery and shown.delivery.message_id) or make_message_id(settings.mail_from)
    out.write_bytes(
        build_message(shown.email, mail_from=settings.mail_from, message_id=message_id, date=clock.now())
    )


# -- plan, send and status: the admin's view of a period ------------------------------------------


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
            if as_json:
                echo_json({"period_key": None, "counts": {}, "note": "no digest has been planned yet"})
            else:
                unchanged("no digest has been planned yet; `papermail digest send` plans and sends one")
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


def _require_ranking(session) -> None:
    reason = nothing_ranked_reason(session)
    if reason:
        raise CommandError(f"nothing to plan: {reason}")


def _planned(session, settings, period: str | None) -> tuple[list[int], list[str]]:
    """Plan now (or all of ``period``); return the new ids and the periods they (or ``period``) cover."""
    _require_ranking(session)
    with progress_bar("planning", None) as bar:
        new_ids = planning.plan_and_queue(
            session, settings, now=clock.now(), period_key=period, queue=False, on_chunk=bar.advance
        )
    periods = periods_of(session, new_ids) | ({period} if period else set())
    return new_ids, sorted(periods)


@digest.command()
@period_option_defaulting(DUE_NOW)
@json_option
def plan(period: str | None, as_json: bool) -> None:
    """Plan the digests due now, or with --period P that period for everyone. Safe to run twice."""
    settings = settings_or_exit()
    with cli_session() as session:
        new_ids, periods = _planned(session, settings, period)
        counts = {key: status_counts(session, [key]) for key in periods}
    if as_json:
        echo_json({"planned": len(new_ids), "periods": counts})
        return
    if new_ids:
        changed(
            f"planned {plural(len(new_ids), 'new delivery', 'new deliveries')} ({', '.join(periods)}); "
            "nothing sent yet"
        )
    else:
        unchanged(
            f"nothing new to plan{' in ' + period if period else ' right now'}: it is all planned already"
        )
    print_tables(*(counts_table(f"Deliveries, period {key}", counts[key]) for key in periods))


@digest.command()
@period_option_defaulting(DUE_NOW)
@click.option("--wait", is_flag=True, help="Show progress until the workers have drained the period.")
@click.option(
    "--timeout", type=float, default=3600, show_default=True, help="With --wait: give up after SECONDS."
)
@json_option
def send(period: str | None, wait: bool, timeout: float, as_json: bool) -> None:
    """Plan, then queue the sends for the workers; with --wait, follow them until they are done."""
    settings = settings_or_exit()
    with cli_session() as session:
        new_ids, periods = _planned(session, settings, period)
        waiting = pending_ids(session, periods)
        planning.enqueue_sends(session, waiting, settings=settings)
        idle = None if new_ids or waiting or period else nobody_due_message(session, clock.now())
    if as_json:
        if not wait or not periods:
            echo_json({"planned": len(new_ids), "queued": len(waiting), "periods": periods, "note": idle})
    elif new_ids or waiting:
        changed(
            f"planned {plural(len(new_ids), 'new delivery', 'new deliveries')} ({', '.join(periods)}); "
            f"queued {len(waiting)} for the workers"
        )
    else:
        unchanged(idle or f"nothing to send in {period}: all of it is planned and none of it is waiting")
    if not wait or not periods:
        return
    with one_line_errors(), progress_bar(f"sending {', '.join(periods)}", None) as bar:
        counts = wait_until_drained(
            settings,
            periods,
            timeout=timeout,
            on_progress=lambda c: bar.update(
                completed=sum(c.values()) - sum(c[s] for s in IN_FLIGHT), total=sum(c.values())
            ),
        )
    if counts is None:
        raise CommandError(
            f"still sending after {timeout:g}s; is a worker running (`papermail worker`)? "
            f"see: papermail digest status --period {periods[0]}"
        )
    if as_json:
        echo_json({"planned": len(new_ids), "queued": len(waiting), "periods": periods, "counts": counts})
    else:
        print_tables(counts_table(f"Deliveries, {', '.join(periods)}", counts))
    undelivered = sum(counts[s] for s in UNDELIVERED)
    if undelivered:
        raise CommandError(f"{undelivered} not delivered; see: papermail digest status --period {periods[0]}")


@digest.command()
@period_option
@json_option
def resume(period: str | None, as_json: bool) -> None:
    """Resume a period the circuit breaker paused, and queue its waiting deliveries again."""
    settings = settings_or_exit()
    with cli_session() as session:
        period = period or latest_period_key(session)
        paused = bool(period and paused_periods(session, [period]))
        waiting: list[int] = []
        if paused:
            waiting = resume_digest(session, period, actor=cli_actor())
            planning.enqueue_sends(session, waiting, settings=settings)
        elif period is not None and not is_planned(session, period):
            raise CommandError(f"no digest planned for period {period}; see: papermail digest status")
    if as_json:
        echo_json({"period_key": period, "resumed": paused, "queued": len(waiting)})
    elif period is None:
        unchanged("nothing to resume: no digest has been planned yet")
    elif paused:
        changed(f"resumed {period}; queued {plural(len(waiting), 'delivery', 'deliveries')} for the workers")
    else:
        unchanged(f"nothing to resume: {period} is not paused (the circuit breaker pauses a period)")
