"""``papermail score`` (rank now) and ``papermail trending`` (show the current ranking)."""

from __future__ import annotations

import dataclasses
import json

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from papermail import trending
from papermail.admin import nothing_yet
from papermail.categories import UnknownCategory, canonical_category
from papermail.cli.base import CommandError, cli_session, settings_or_exit
from papermail.cli.options import BadUsage
from papermail.cli.output import echo_json, json_option
from papermail.trending.totals import metric_totals

DEFAULT_LIMIT = 20
WINDOW_NAMES = {trending.DAILY: "last 24 hours", trending.WEEKLY: "last 7 days"}


@click.command()
@json_option
def score(as_json: bool) -> None:
    """Rank every recent paper now, as a new scoring run for each window (24h and 7d)."""
    settings = settings_or_exit()
    with cli_session() as session:
        if nothing_yet.paper_count(session) == 0:
            raise CommandError(f"nothing to rank: {nothing_yet.no_papers_reason(session)}")
        summaries = trending.score_windows(session, settings)
        empty = None if any(s.paper_count for s in summaries) else nothing_yet.nothing_ranked_reason(session)
    if as_json:
        echo_json([dataclasses.asdict(summary) for summary in summaries])
    if empty:
        raise CommandError(empty)
    if as_json:
        return
    for summary in summaries:
        pruned = f"; deleted {summary.pruned_runs} old runs" if summary.pruned_runs else ""
        click.echo(
            f"scoring run {summary.run_id} ({summary.window}): ranked {summary.paper_count:,} papers "
            f"as of {summary.as_of:%Y-%m-%d %H:%M} UTC{pruned}"
        )


def _categories(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    values = tuple(part.strip() for value in values for part in value.split(",") if part.strip())
    # arXiv's categories in any case, plus any the operator fetches besides them.
    fetched = set(settings_or_exit().arxiv_categories)
    try:
        return tuple(dict.fromkeys(v if v in fetched else canonical_category(v) for v in values))
    except UnknownCategory as exc:
        raise BadUsage(str(exc)) from None  # worded as `subscribers add` words it


@click.command("trending")
@click.option(
    "--limit",
    "-n",
    type=click.IntRange(min=1),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="Papers shown.",
)
@click.option(
    "--topics",
    "--topic",
    "topics",
    multiple=True,
    callback=_categories,
    metavar="CATS",
    help=(
        "Only papers in these arXiv categories (any case; `papermail topics` lists them): "
        "a comma list or repeated, e.g. cs.LG,cs.CL."
    ),
)
@click.option(
    "--window",
    type=click.Choice(list(trending.WINDOWS)),
    default=trending.WEEKLY,
    show_default=True,
    help="Rank by growth over the last 7 days (weekly digests) or 24 hours (daily digests).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def trending_ranking(limit: int, topics: tuple[str, ...], window: str, as_json: bool) -> None:
    """Show the current trending ranking: rank, score, title and why."""
    with cli_session() as session:
        run = trending.latest_run(session, window)
        if run is None or not run.paper_count:  # an empty ranking says why, as no ranking does
            reason = nothing_yet.nothing_ranked_reason(session, run)
            raise CommandError(reason or f"no {window} ranking yet: run `papermail score` first")
        papers = trending.ranked_papers(session, run.id, topics=topics, limit=limit)
        totals = metric_totals(session, [p.paper.id for p in papers], run.as_of)
    if as_json:
        click.echo(json.dumps(_as_json(run, topics, papers, totals), indent=2, ensure_ascii=False))
        return
    where = f" in {', '.join(topics)}" if topics else ""
    heading = (
        f"Trending{where} over the {WINDOW_NAMES[window]} as of {run.as_of:%Y-%m-%d %H:%M} UTC "
        f"(scoring run {run.id})"
    )
    if not papers:
        click.echo(f"{heading}: no papers")
        return
    table = Table(title=heading, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("title", ratio=3)
    table.add_column("why", ratio=2)
    for ranked in papers:
        # Text, not markup: a title like "[bold]…" comes from a feed and must print as it is.
        table.add_row(
            str(ranked.rank), f"{ranked.score:.2f}", Text(ranked.paper.title), Text(ranked.evidence)
        )
    Console(soft_wrap=False).print(table)


def _as_json(
    run, topics: tuple[str, ...], papers: list[trending.RankedPaper], totals: dict[int, dict[str, int]]
) -> dict:
    return {
        "run": {"id": run.id, "window": run.window, "as_of": run.as_of.isoformat(), "params": run.params},
        "topics": list(topics),
        "papers": [
            {
                "rank": p.rank,
                "score": p.score,
                "arxiv_id": p.paper.arxiv_id,
                "title": p.paper.title,
                "evidence": p.evidence,
                "primary_category": p.paper.primary_category,
                "categories": p.paper.categories,
                "url": p.paper.abs_url,
                "signals": totals.get(p.paper.id, {}),
                "tldr": p.paper.tldr,
            }
            for p in papers
        ],
    }
