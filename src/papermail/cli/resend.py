"""``papermail resend``: send a digest's frozen content again, safely, to one person or a period."""

from __future__ import annotations

import click

from papermail.admin.deliveries import DeliveryRow, latest_period_key
from papermail.admin.resend import PeriodResend, decide_resend, plan_period_resend, resend_one, resend_period
from papermail.cli.base import CommandError, cli_session, settings_or_exit
from papermail.cli.options import (
    LATEST_PLANNED,
    BadUsage,
    cli_actor,
    email_argument,
    one_line_errors,
    period_option_defaulting,
)
from papermail.cli.output import (
    changed,
    counts_table,
    echo_json,
    json_option,
    print_tables,
    progress_bar,
    unchanged,
)
from papermail.db.models import DeliveryStatus


@click.command()
@email_argument(required=False)
@period_option_defaulting(f"{LATEST_PLANNED}; with EMAIL, the most recent one planned for that address")
@click.option("--failed", is_flag=True, help="Resend every undelivered row of the period.")
@click.option("--force", is_flag=True, help="Resend EMAIL's digest even if it was sent (audited).")
@click.option("--reason", help="Why; written to the audit log with --force.")
@click.option("--dry-run", is_flag=True, help="Say what would be sent, with counts by status; send nothing.")
@json_option
def resend(
    email: str | None,
    period: str | None,
    failed: bool,
    force: bool,
    reason: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Resend the frozen digest of EMAIL (their latest, or --period P), or with --failed a whole period's.

    Only deliveries that did not go out (failed, exhausted, uncertain) are resent; a sent one needs
    --force. Unsubscribed and suppressed addresses are never mailed, even with --force. Safe to run
    while workers are sending: it claims rows exactly as they do.
    """
    if (email is None) == (not failed):
        raise BadUsage("give an EMAIL, or --failed to resend a whole period (not both)")
    if failed and force:
        raise BadUsage("--force resends one EMAIL's digest; it can't be used with --failed")
    if email is not None:
        _resend_one(email, period, force=force, reason=reason, dry_run=dry_run, as_json=as_json)
    else:
        _resend_period(period, dry_run=dry_run, as_json=as_json)


def _describe(row: DeliveryRow) -> str:
    why = f", {row.last_smtp_reply}" if row.last_smtp_reply and row.status != DeliveryStatus.SENT else ""
    return f"the {row.period_key} digest to {row.email} ({row.status}{why})"


def _resend_one(
    email: str, period: str | None, *, force: bool, reason: str | None, dry_run: bool, as_json: bool
):
    settings = settings_or_exit()
    with one_line_errors(), cli_session() as session:
        decision = decide_resend(session, email, period, force=force)
    row = decision.delivery
    result = None
    if decision.claimable is not None and not dry_run:
        result = resend_one(settings, decision, actor=cli_actor(), reason=reason)
    if as_json:
        echo_json(
            {
                "delivery": row.as_dict(),
                "action": "nothing"
                if decision.claimable is None
                else ("force" if decision.forced else "resend"),
                "why": decision.why or None,
                "dry_run": dry_run,
                "sent": bool(result and result.sent),
                "after": result.after.as_dict() if result else None,
            }
        )
    elif decision.claimable is None:
        unchanged(decision.why)
    elif dry_run:
        forced = " (forced: it was sent; this would be audited)" if decision.forced else ""
        unchanged(f"would resend {_describe(row)}{forced}; nothing sent (--dry-run)")
    elif result.sent:
        audited = "; written to the audit log" if decision.forced else ""
        changed(f"resent {_describe(row)} as {result.after.message_id}{audited}")
    if result is None or result.sent:
        return
    if result.after.status == DeliveryStatus.SENT:
        unchanged(f"the {row.period_key} digest to {email} was sent meanwhile by a worker; nothing more sent")
        return
    reply = f": {result.after.last_smtp_reply}" if result.after.last_smtp_reply else ""
    raise CommandError(
        f"not sent: the {row.period_key} digest to {email} is now {result.after.status}{reply}"
    )


def _resend_period(period: str | None, *, dry_run: bool, as_json: bool) -> None:
    settings = settings_or_exit()
    with one_line_errors(), cli_session() as session:
        period = period or latest_period_key(session)
        if period is None:
            if as_json:
                echo_json({"period_key": None, "to_resend": 0, "note": "no digest has been planned yet"})
            else:
                unchanged("no digest has been planned yet; nothing to resend")
            return
        plan = plan_period_resend(session, period)
    if not dry_run and plan.delivery_ids:
        with progress_bar(f"resending {period}", len(plan.delivery_ids)) as bar:
            resend_period(settings, plan, actor=cli_actor(), on_progress=bar.advance)
    if as_json:
        echo_json(
            {
                "period_key": period,
                "counts": plan.counts,
                "to_resend": len(plan.delivery_ids),
                "left_alone": plan.left_alone,
                "dry_run": dry_run,
                "outcome": plan.outcome,
            }
        )
    else:
        _report_period(plan, dry_run)
    not_delivered = plan.outcome.get("failed", 0) + plan.outcome.get("retried", 0)
    if not_delivered:
        raise CommandError(
            f"{not_delivered} still not delivered; see: papermail digest status --period {period}"
        )


def _report_period(plan: PeriodResend, dry_run: bool) -> None:
    if dry_run:
        print_tables(counts_table(f"Deliveries, period {plan.period_key}", plan.counts))
    left_alone = (
        f"; {plan.left_alone} left alone (unsubscribed, bounced or suppressed)" if plan.left_alone else ""
    )
    to_resend = len(plan.delivery_ids)
    if dry_run:
        unchanged(
            f"would resend {to_resend} undelivered digests of {plan.period_key}{left_alone}; nothing sent"
        )
    elif not to_resend:
        unchanged(
            f"nothing to resend in {plan.period_key}: every digest went out or is on its way{left_alone}"
        )
    else:
        outcome = ", ".join(
            f"{count} {name.replace('_', ' ')}" for name, count in plan.outcome.items() if count
        )
        changed(f"resent {plan.period_key}: {outcome}{left_alone}")
