"""The live preview on the home page ("Trending this week"): the top papers of the latest weekly run."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from papermail.categories import category_name
from papermail.trending import WEEKLY, latest_run, ranked_papers

PREVIEW_SIZE = 5
PREVIEW_AUTHORS = 3


@dataclass(frozen=True)
class TrendingPaper:
    rank: int
    title: str
    url: str
    authors: str
    category: str
    evidence: str


def top_trending(session: Session, limit: int = PREVIEW_SIZE) -> list[TrendingPaper]:
    """The latest finished 7-day run's top ``limit`` papers, best first (empty before the first run)."""
    run = latest_run(session, WEEKLY)
    rows = ranked_papers(session, run.id, limit=limit) if run else []
    return [
        TrendingPaper(
            rank=row.rank,
            title=row.paper.title,
            url=row.paper.abs_url,
            authors=_short_authors(row.paper.authors),
            category=category_name(row.paper.primary_category) if row.paper.primary_category else "",
            evidence=row.evidence,
        )
        for row in rows
    ]


def _short_authors(authors: list[str]) -> str:
    if len(authors) > PREVIEW_AUTHORS:
        return ", ".join(authors[:PREVIEW_AUTHORS]) + " et al."
    return ", ".join(authors)
