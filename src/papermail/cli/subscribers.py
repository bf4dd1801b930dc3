"""``papermail subscribers``: list, add, remove (or erase), import and export subscribers."""

from __future__ import annotations

from collections.abc import Sequence

import click

from papermail.admin import subscriber_csv
from papermail.admin import subscribers as admin
from papermail.admin.stats import subscriber_counts
from papermail.bounces.policy import reactivate as reactivate_subscriber
from papermail.cli import likes as likes_module
from papermail.cli.base import CommandError, cli_session, settings_or_exit
from papermail.cli.likes import apply_likes, apply_mix
from papermail.cli.options import cli_actor, email_argument, one_line_errors
from papermail.cli.output import (
    changed,
    console,
    echo_json,
    echo_json_array,
    json_option,
    plural,
    print_tables,
    progress_bar,
    status_text,
    table,
    unchanged,
)
from papermail.db.models import Frequency, Subscriber, SubscriberStatus
from papermail.subscribers import votes
from papermail.subscribers.core import find_by_email

# Beyond this many rows a table takes rich seconds to lay out; listings print plain columns instead.
TABLE_ROW_LIMIT = 1000
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

status_choice = click.option(
    "--status",
    type=click.Choice([s.value for s in SubscriberStatus]),
    help="Only subscribers with this status.",
)


@click.group()
def subscribers() -> None:
    """List, add, remove, import and export subscribers, and record the papers they like."""


subscribers.add_command(likes_module.like)


def _schedule(subscriber: Subscriber) -> str:
    """``weekly, Mon 08:00 UTC`` or ``daily at 08:00 Europe/Berlin``."""
    at = f"{subscriber.send_hour:02d}:00 {subscriber.timezone}"
    if subscriber.frequency == Frequency.DAILY:
        return f"daily at {at}"
    return f"weekly, {WEEKDAYS[subscriber.send_weekday]} {at}"


@subscribers.command("list")
@status_choice
@json_option
def list_subscribers(status: str | None, as_json: bool) -> None:
    """List subscribers (all, or those with one status)."""
    wanted = SubscriberStatus(status) if status else None
    with cli_session() as session:
        rows = admin.iter_subscribers(session, wanted)
        if as_json:
            echo_json_array(admin.subscriber_record(s) for s in rows)
            return
        total = _count(session, wanted)
        columns = ("email", "status", "topics", "keywords", "schedule", "since")
        if total > TABLE_ROW_LIMIT:
            # Laying out a table of thousands of rows takes rich many seconds: stream plain columns.
            click.echo("\t".join(columns))
            for s in rows:
                click.echo("\t".join(_list_cells(s)))
            return
        grid = table(*columns)
        for s in rows:
            email, state, *rest = _list_cells(s)
            grid.add_row(email, status_text(state), *rest)
        grid.caption = plural(grid.row_count, "subscriber")
        print_tables(grid)


def _count(session, wanted: SubscriberStatus | None) -> int:
    counts = subscriber_counts(session)
    return counts[wanted.value] if wanted else sum(counts.values())


def _list_cells(s: Subscriber) -> list[str]:
    return [
        s.email,
        s.status.value,
        ", ".join(s.topics),
        ", ".join(s.keywords),
        _schedule(s),
        f"{s.created_at:%Y-%m-%d}",
    ]


def _split(values: tuple[str, ...]) -> list[str] | None:
    """Repeated options, each a comma list, as one list; None when the option was not given."""
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@subscribers.command()
@email_argument()
@click.option(
    "--topics",
    metavar="CATS",
    multiple=True,
    help="arXiv categories in any case (`papermail topics` lists them), comma list or repeated: cs.LG,cs.CL.",
)
@click.option(
    "--keywords",
    metavar="WORDS",
    multiple=True,
    help="Whole-word keywords, comma list or repeated.",
)
@click.option("--frequency", type=click.Choice([f.value for f in Frequency]), help="weekly or daily.")
@click.option(
    "--day",
    type=click.Choice([day.lower() for day in WEEKDAYS], case_sensitive=False),
    help="Weekday of a weekly digest: mon … sun. New subscribers: mon.",
)
@click.option(
    "--hour", type=click.IntRange(0, 23), metavar="0-23", help="Hour of the send time. New subscribers: 8."
)
@click.option(
    "--timezone", metavar="ZONE", help="IANA timezone for the send time, e.g. Europe/Berlin. New: UTC."
)
@click.option(
    "--confirmed", is_flag=True, help="They already agreed: make them active now (no confirmation email)."
)
@click.option("--like", "likes", multiple=True, metavar="ID_OR_URL", help="A paper they like (repeatable).")
@click.option(
    "--mix",
    metavar="N",
    callback=likes_module.parse_mix_option,
    help="0 = trending only … 4 = their interests only.",
)
@json_option
def add(
    email: str,
    topics: tuple[str, ...],
    keywords: tuple[str, ...],
    frequency: str | None,
    day: str | None,
    hour: int | None,
    timezone: str | None,
    confirmed: bool,
    likes: tuple[str, ...],
    mix: int | None,
    as_json: bool,
) -> None:
    """Add a subscriber, or update one's preferences (new ones default to the fetched categories)."""
    settings = settings_or_exit()
    given = {
        "topics": _split(topics),
        "keywords": _split(keywords),
        "frequency": frequency,
        "send_weekday": None if day is None else [d.lower() for d in WEEKDAYS].index(day.lower()),
        "send_hour": hour,
        "timezone": timezone,
    }
    with one_line_errors(), cli_session() as session:
        result = admin.add_subscriber(
            session,
            email,
            given,
            confirmed=confirmed,
            actor=cli_actor(),
            default_topics=settings.arxiv_categories,
        )
        subscriber = result.subscriber
        mix_change = apply_mix(subscriber, mix)
        changes = [*result.changes, *([mix_change] if mix_change and not result.created else [])]
        problem = (
            apply_likes(session, settings, subscriber, likes, votes.MORE, votes.FROM_SEED) if likes else None
        )
        if as_json:
            echo_json(
                {
                    "email": email,
                    "created": result.created,
                    "changes": changes,
                    "status": subscriber.status.value,
                    "topics": subscriber.topics,
                    "keywords": subscriber.keywords,
                    "frequency": subscriber.frequency.value,
                    "schedule": _schedule(subscriber),
                    "mix": subscriber.relevance_mix,
                }
            )
        else:
            _report_added(email, result.created, changes, subscriber)
    if problem:  # after the commit: the subscriber and the papers found stay
        raise CommandError(problem)


def _report_added(email: str, created: bool, changes: Sequence[str], subscriber: Subscriber) -> None:
    if created:
        changed(f"added {email} ({subscriber.status.value}): {_describe(subscriber)}")
    elif changes:
        changed(f"updated {email}: {'; '.join(changes)}")
    else:
        unchanged(f"{email} is already there ({subscriber.status.value}); nothing changed")
    if subscriber.status == SubscriberStatus.PENDING:
        unchanged(f"{email} gets no digest until confirmed; add --confirmed if they already agreed")
    elif subscriber.status == SubscriberStatus.UNSUBSCRIBED:
        unchanged(f"{email} unsubscribed; add --confirmed only if they asked to subscribe again")


def _describe(subscriber: Subscriber) -> str:
    topics = ", ".join(subscriber.topics) or "none"
    keywords = ", ".join(subscriber.keywords) or "none"
    mix = (
        f"; relevance mix {subscriber.relevance_mix}" if subscriber.relevance_mix != votes.DEFAULT_MIX else ""
    )
    return f"topics {topics}; keywords {keywords}; {_schedule(subscriber)}{mix}"


@subscribers.command()
@email_argument()
@click.option(
    "--purge", is_flag=True, help="Also erase their data (GDPR); keep only a hash so they are never mailed."
)
@click.option("--reason", help="Why, for the audit log.")
@click.option("--yes", "-y", is_flag=True, help="Don't ask before erasing with --purge.")
@json_option
def remove(email: str, purge: bool, reason: str | None, yes: bool, as_json: bool) -> None:
    """Unsubscribe an address; with --purge, erase everything papermail holds about it."""
    actor = cli_actor()
    if not purge:
        with one_line_errors(), cli_session() as session:
            result = admin.remove_subscriber(session, email, actor=actor, reason=reason)
        if as_json:
            echo_json({"email": email, "changed": result.changed, "status": str(result.status)})
        elif result.changed:
            changed(f"unsubscribed {email}")
        else:
            unchanged(f"{email} is already {result.status}; nothing changed")
        return
    if not yes:
        click.confirm(f"Erase all data about {email}? This can't be undone", abort=True, err=True)
    with one_line_errors(), cli_session() as session:
        erased = admin.erase_subscriber(session, email, actor=actor, reason=reason)
    if as_json:
        echo_json(
            {
                "email": email,
                "erased": not erased.already_erased,
                "deliveries": erased.deliveries,
                "audit_rows_scrubbed": erased.audit_rows_scrubbed,
            }
        )
        return
    if erased.already_erased:
        unchanged(f"{email} was already erased; nothing to do")
        return
    changed(
        f"erased {email}: the subscriber, {erased.deliveries} deliveries, and the address in "
        f"{erased.audit_rows_scrubbed} audit rows; kept a hashed suppression entry so it is never "
        "mailed again"
    )


@subscribers.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--strict", is_flag=True, help="Import nothing if any row is bad.")
@click.option("--confirmed", is_flag=True, help="Rows without a status are active (they already agreed).")
@click.option("--dry-run", is_flag=True, help="Check every row and report; write nothing.")
@json_option
def import_subscribers(file, strict: bool, confirmed: bool, dry_run: bool, as_json: bool) -> None:
    """Import subscribers from CSV: an email column, optionally the other columns of `export`.

    Every row is checked first and bad rows are reported with their line numbers. Existing addresses
    are updated; nobody who unsubscribed or is suppressed is ever re-activated by an import. Likes and
    dislikes are added to the votes an address has (none is removed), with no arXiv lookup.
    """
    settings = settings_or_exit()
    name = getattr(file, "name", "-")
    try:
        with progress_bar(f"checking {name}", None) as bar:
            checked = subscriber_csv.read_import_file(
                file, confirmed=confirmed, default_topics=settings.arxiv_categories, on_progress=bar.advance
            )
    except subscriber_csv.InvalidFile as exc:
        raise CommandError(f"{name}: {exc}") from None  # which file, when several are imported in turn
    err = console(stderr=True)
    for bad in checked.bad_rows:
        err.print(f"{name}:{bad.line}: {bad.problem}", highlight=False, markup=False)
    bad_count = len(checked.bad_rows)
    summary: dict = {
        "file": name,
        "good_rows": len(checked.rows),
        "bad_rows": [{"line": bad.line, "problem": bad.problem} for bad in checked.bad_rows],
        "written": False,
    }
    if ((bad_count and strict) or dry_run) and as_json:
        echo_json(summary)
    if bad_count and strict:
        raise CommandError(f"{bad_count} bad rows in {name}; imported nothing (--strict)")
    if dry_run and as_json:
        return
    if dry_run:
        unchanged(f"{name}: {len(checked.rows)} good rows, {bad_count} bad; nothing written (--dry-run)")
        return
    with cli_session() as session, progress_bar(f"importing {name}", len(checked.rows)) as bar:
        report = subscriber_csv.apply_import(
            session,
            checked.rows,
            actor=cli_actor(),
            source=name,
            on_progress=bar.advance,
        )
    if as_json:
        counts = ("added", "updated", "unchanged", "kept_unsubscribed", "suppressed")
        echo_json({**summary, "written": True, **{key: getattr(report, key) for key in counts}})
    else:
        _report_import(name, report)
    if bad_count:
        raise CommandError(f"{bad_count} bad rows in {name} were not imported (listed above)")


def _report_import(name: str, report) -> None:
    changed(f"imported {name}: {report.added} added, {report.updated} updated, {report.unchanged} unchanged")
    if report.kept_unsubscribed:
        unchanged(f"kept {report.kept_unsubscribed} unsubscribed (listed as active, but they opted out here)")
    if report.suppressed:
        unchanged(f"skipped {report.suppressed} on the suppression list (never mailed again)")


@subscribers.command()
@status_choice
@click.option(
    "-o",
    "--out",
    "output",
    type=click.File("w"),
    default="-",
    metavar="FILE",
    help="Write the CSV to FILE instead of stdout.",
)
def export(status: str | None, output) -> None:
    """Export subscribers as CSV (the format `import` reads)."""
    wanted = SubscriberStatus(status) if status else None
    with cli_session() as session, progress_bar("exporting", _count(session, wanted)) as bar:
        count = subscriber_csv.write_export(session, output, wanted, on_progress=bar.advance)
    click.echo(f"exported {plural(count, 'subscriber')}", err=True)


@subscribers.command()
@email_argument()
@json_option
def reactivate(email: str, as_json: bool) -> None:
    """Lift a bounce suppression (never a complaint's), after the address works again."""
    with cli_session() as session:
        subscriber = find_by_email(session, email)
        if subscriber is None:
            raise CommandError(admin.no_subscriber(email))
        try:
            lifted = reactivate_subscriber(session, subscriber, actor=cli_actor())
        except PermissionError as exc:
            raise CommandError(str(exc)) from None
        status = subscriber.status.value
    if as_json:
        echo_json({"email": email, "changed": lifted, "status": status})
    elif lifted:
        changed(f"reactivated {email}: the bounce is lifted, status {status}")
    else:
        unchanged(f"{email} was not bounced; nothing to do")
