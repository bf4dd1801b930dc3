"""``papermail topics``: every arXiv category papermail accepts, grouped by field."""

from __future__ import annotations

import click

from papermail.categories import ARCHIVES, FULL_LIST_URL, TAXONOMY
from papermail.cli.output import echo_json, json_option, print_tables, table


@click.command()
@json_option
def topics(as_json: bool) -> None:
    """List the arXiv categories to follow (--topics, the web form), grouped by field. Any case works."""
    if as_json:
        echo_json(
            [
                {
                    "field": field,
                    "categories": [
                        {"code": code, "name": name, "archive": code in ARCHIVES} for code, name in group
                    ],
                }
                for field, group in TAXONOMY.items()
            ]
        )
        return
    grids = []
    for field, group in TAXONOMY.items():
        grid = table("code", "name", title=field)
        for code, name in group:
            grid.add_row(code, name)
        grids.append(grid)
    count = sum(code not in ARCHIVES for group in TAXONOMY.values() for code, _ in group)
    grids[-1].caption = (
        f"{count} categories; an archive (cs, math, astro-ph, …) follows every category in it. "
        f"Descriptions: {FULL_LIST_URL}"
    )
    print_tables(*grids)
