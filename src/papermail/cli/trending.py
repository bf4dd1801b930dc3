"""``papermail score`` (rank now) and ``papermail trending`` (show the current ranking)."""

from __future__ import annotations

import dataclasses
import json
import re

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from papermail import readiness, trending
from papermail.cli.base import CommandError, cli_session, settings_or_exit
from papermail.cli.output import echo_json, json_option

# An arXiv category as used in listings: "cs.LG", "stat.ML", "cond-mat.stat-mech", "hep-th".
CATEGORY = re.compile(r"^[a-z][a-z-]*(\.[A-Za-z][A-Za-z-]*)?$")
DEFAULT_LIMIT = 20


@click.command()
@json_option
def score(as_json: bool) -> None:
    """Rank every recent paper now, as a new scoring run."""
    settings = settings_or_exit()
    with cli_session() as session:
        if readiness.paper_count(session) == 0:
            raise CommandError(f"nothing to rank: {readiness.no_papers_reason(session)}")
        summary = trending.score_papers(
            session, trending.TrendParams.from_settings(settings), keep_runs=settings.trend_keep_runs
        )
        empty = None if summary.paper_count else readiness.nothing_ranked_reason(session)
    if as_json:
        echo_json(dataclasses.asdict(summary))
    if empty:
        raise CommandError(empty)
    if as_json:
        return
    pruned = f"; deleted {summary.pruned_runs} old runs" if summary.pruned_runs else ""
    click.echo(
        f"scoring run {summary.run_id}: ranked {summary.paper_count:,} papers "
        f"as of {summary.as_of:%Y-%m-%d %H:%M} UTC{pruned}"
    )


def _categories(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    values = tuple(part.strip() for value in values for part in value.split(",") if part.strip())
    for value in values:
        if not CATEGORY.match(value):
            raise click.BadParameter(f"{value!r} is not an arXiv category like cs.LG")
    return values


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
    help="Only papers in these arXiv categories: a comma list or repeated, e.g. cs.LG,cs.CL.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def trending_ranking(limit: int, topics: tuple[str, ...], as_json: bool) -> None:
    """Show the current trending ranking: rank, score, title and why."""
    with cli_session() as session:
        run = trending.latest_run(session)
        if run is None:
            raise CommandError(readiness.nothing_ranked_reason(session))
        papers = trending.ranked_papers(session, run.id, topics=topics, limit=limit)
    if as_json:
        click.echo(json.dumps(_as_json(run, topics, papers), indent=2, ensure_ascii=False))
        return
    where = f" in {', '.join(topics)}" if topics else ""
    heading = f"Trending{where} as of {run.as_of:%Y-%m-%d %H:%M} UTC (scoring run {run.id})"
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


def _as_json(run, topics: tuple[str, ...], papers: list[trending.RankedPaper]) -> dict:
    return {
        "run": {"id": run.id, "as_of": run.as_of.isoformat(), "params": run.params},
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
            }
            for p in papers
        ],
    }
