"""The live preview on the home page: the top papers of the latest finished scoring run."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail.categories import category_name
from papermail.db.models import Paper, ScoringRun, TrendScore

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
    """The latest finished run's top ``limit`` papers, best first (empty before the first run)."""
    # Same rule as papermail.trending.latest_run: the newest *finished* run, never a half-written one.
    latest = (
        sa.select(ScoringRun.id)
        .where(ScoringRun.finished_at.is_not(None))
        .order_by(ScoringRun.as_of.desc(), ScoringRun.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows = session.execute(
        sa.select(TrendScore.rank, TrendScore.evidence, Paper)
        .join(Paper, Paper.id == TrendScore.paper_id)
        .where(TrendScore.run_id == latest)
        .order_by(TrendScore.rank)
        .limit(limit)
    ).all()
    return [
        TrendingPaper(
            rank=rank,
            title=paper.title,
            url=paper.abs_url,
            authors=_short_authors(paper.authors),
            category=category_name(paper.primary_category) if paper.primary_category else "",
            evidence=evidence,
        )
        for rank, evidence, paper in rows
    ]


def _short_authors(authors: list[str]) -> str:
    if len(authors) > PREVIEW_AUTHORS:
        return ", ".join(authors[:PREVIEW_AUTHORS]) + " et al."
    return ", ".join(authors)
