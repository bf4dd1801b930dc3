"""``papermail stats``: subscribers, deliveries and bounces, confirmation emails, fetches, trending."""

from __future__ import annotations

import click
from rich.text import Text

from papermail.admin.stats import UNCATEGORISED, Stats, collect_stats
from papermail.cli.base import cli_session
from papermail.cli.options import period_option
from papermail.cli.output import counts_table, echo_json, json_option, print_tables, status_text, table


@click.command()
@period_option
@json_option
def stats(period: str | None, as_json: bool) -> None:
    """Show subscribers, deliveries and bounce rate, confirmation emails, last fetches, top 5 trending."""
    with cli_session() as session:
        collected = collect_stats(session, period)
    if as_json:
        echo_json(collected.as_dict())
        return
    print_tables(*_tables(collected))


def _tables(collected: Stats) -> list:
    period = collected.period_key
    deliveries = counts_table(
        f"Deliveries, period {period}" if period else "Deliveries (none planned yet)", collected.deliveries
    )
    bounces = collected.bounces
    rate = "n/a" if bounces.rate is None else f"{bounces.rate:.2%}"
    deliveries.caption = (
        f"bounce rate {rate} ({bounces.bounced} rejected of {bounces.handed_over} handed to SMTP)"
    )
    fetches = table(
        "source",
        "status",
        "started",
        "new",
        "updated",
        "signals",
        "rejected",
        "errors",
        title="Last fetch per source",
    )
    for column in fetches.columns[3:]:
        column.justify = "right"
    problems: list[str] = []
    for run in collected.fetches:
        fetches.add_row(
            run.source,
            status_text(run.status),
            f"{run.started_at:%Y-%m-%d %H:%M} UTC",
            *(
                str(n)
                for n in (run.new_papers, run.updated_papers, run.signals_added, run.rejected, run.errors)
            ),
        )
        problems += [f"{run.source}: {problem}" for problem in run.problems]
        if run.problem_count > len(run.problems):
            problems.append(f"{run.source}: … and {run.problem_count - len(run.problems)} more")
    if not collected.fetches:
        fetches.caption = "no fetch has run yet"
    elif problems:
        fetches.caption = "\n".join(problems)
        fetches.caption_justify = "left"
    as_of = collected.scoring_run_as_of
    trending = table(
        "#",
        "score",
        "paper",
        "why",
        title=f"Trending (ranking of {as_of:%Y-%m-%d %H:%M} UTC)" if as_of else "Trending",
    )
    for paper in collected.trending:
        trending.add_row(
            str(paper.rank), f"{paper.score:.2f}", Text(f"{paper.title} ({paper.arxiv_id})"), paper.evidence
        )
    if not collected.trending:
        trending.caption = collected.nothing_ranked or "the ranking is empty"
    elif missing := collected.ranked_without_category:
        trending.caption = (
            f"{missing} ranked paper{'s' if missing != 1 else ''} without an arXiv category yet "
            f"({UNCATEGORISED})"
        )
    else:
        trending.caption = "every ranked paper has its arXiv category"
    confirmations = counts_table("Confirmation emails", collected.confirmations)
    tables = [counts_table("Subscribers", collected.subscribers), deliveries, confirmations]
    return [*tables, _report_rates(collected), fetches, trending]


def _report_rates(collected: Stats):
    """Hard bounces and complaints reported per period (including the reports that came later)."""
    rates = table("period", "handed over", "hard", "soft", "complaints", "hard rate", "complaint rate")
    rates.title = "Bounces and complaints per period"
    for row in collected.report_rates:
        rates.add_row(
            row.period_key,
            str(row.handed_over),
            str(row.hard),
            str(row.soft),
            str(row.complaints),
            "n/a" if row.hard_rate is None else f"{row.hard_rate:.2%}",
            "n/a" if row.complaint_rate is None else f"{row.complaint_rate:.2%}",
        )
    if not collected.report_rates:
        rates.caption = "no digest planned yet"
    return rates
