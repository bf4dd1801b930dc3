"""Papers, their signal time series, and the trend rankings scored from them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column

from papermail.arxiv_ids import id_month_start
from papermail.db.models.base import Base


def _id_month_of_inserted_row(context: Any) -> datetime | None:
    arxiv_id = context.get_current_parameters().get("arxiv_id")
    return id_month_start(arxiv_id) if arxiv_id else None


class Paper(Base):
    """One arXiv paper, whatever source we saw it through, keyed by its version-less id."""

    __tablename__ = "papers"

    id: Mapped[int] = mapped_column(primary_key=True)
    # "2401.01234" or old-style "cond-mat/0412498", never with a "v2" suffix.
    arxiv_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    version: Mapped[int] = mapped_column(default=1)
    title: Mapped[str] = mapped_column(sa.Text)
    abstract: Mapped[str] = mapped_column(sa.Text, default="")
    authors: Mapped[list[str]] = mapped_column(default=list)
    primary_category: Mapped[str | None] = mapped_column(sa.String(32))
    # All categories including the primary one, so a cross-list matches a topic like its home.
    categories: Mapped[list[str]] = mapped_column(default=list)
    published_at: Mapped[datetime | None]
    # The start of the month the arXiv id was issued in, derived from it on insert: the earliest the
    # first version can be, so it bounds the age of a paper whose ``published_at`` is unknown.
    id_month: Mapped[datetime | None] = mapped_column(default=_id_month_of_inserted_row)
    updated_at: Mapped[datetime | None]
    github_url: Mapped[str | None] = mapped_column(sa.String(300))
    on_huggingface: Mapped[bool] = mapped_column(default=False)
    # Semantic Scholar's machine-written one-sentence summary, when it has one.
    tldr: Mapped[str | None] = mapped_column(sa.Text)
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]

    __table_args__ = (sa.Index(None, "first_seen_at"), sa.Index(None, "published_at"))

    @hybrid_property
    def born_at(self) -> datetime:
        """When the paper appeared: arXiv's publication time, else the earliest its id allows."""
        # The start of its id's month while the date is being looked up, so a replacement of a 2019
        # paper never ranks as new; first seen only for an id without a date, which arXiv doesn't issue.
        return self.published_at or self.id_month or self.first_seen_at

    @born_at.inplace.expression
    @classmethod
    def _born_at_expression(cls) -> sa.ColumnElement[datetime]:
        return sa.func.coalesce(cls.published_at, cls.id_month, cls.first_seen_at)

    @property
    def abs_url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv_id}"

    @property
    def pdf_url(self) -> str:
        return f"https://arxiv.org/pdf/{self.arxiv_id}"

    @property
    def tldr_url(self) -> str:
        """Where the TL;DR comes from: the paper's page on Semantic Scholar."""
        return f"https://www.semanticscholar.org/arxiv/{self.arxiv_id}"

    @property
    def hf_url(self) -> str | None:
        return f"https://huggingface.co/papers/{self.arxiv_id}" if self.on_huggingface else None


class SignalSnapshot(Base):
    """One observation of a popularity metric: an append-only time series per paper."""

    __tablename__ = "signal_snapshots"

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    paper_id: Mapped[int] = mapped_column(sa.ForeignKey("papers.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(sa.String(16))  # "huggingface", "github", ...
    metric: Mapped[str] = mapped_column(sa.String(32))  # "upvotes", "comments", "github_stars"
    value: Mapped[int]
    # Truncated to the minute by the fetcher: a repeated fetch in the same minute is a no-op.
    observed_at: Mapped[datetime]

    __table_args__ = (
        sa.UniqueConstraint("paper_id", "source", "metric", "observed_at"),
        sa.Index(None, "observed_at"),
        # Trending's bulk aggregate groups by (paper, metric) and filters on time: with ``value``
        # included the index covers the query, so it never touches or sorts the table itself.
        sa.Index(None, "paper_id", "metric", "observed_at", "value"),
    )


class ScoringRun(Base):
    """One ranking of all trending papers as of ``as_of``; digests of a period pin one run."""

    __tablename__ = "scoring_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    as_of: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    # The velocity window this run ranks by ("24h", "7d": papermail.trending.WINDOWS). A run that
    # does not say is weekly, the product's default; runs from before windows were 24-hour runs.
    window: Mapped[str] = mapped_column(sa.String(8), default="7d", server_default="24h")
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    paper_count: Mapped[int] = mapped_column(default=0)

    __table_args__ = (sa.Index(None, "as_of"), sa.Index(None, "window", "as_of"))


class TrendScore(Base):
    """A paper's place in one scoring run, with the evidence that explains it."""

    __tablename__ = "trend_scores"

    # No foreign keys, on purpose: a run writes one row per recent paper (100,000 in the benchmark)
    # at once, and PostgreSQL checks a foreign key with one query per row, which measured two
    # thirds of the write. The rows are written in the transaction that read those papers and
    # created the run, and trending.runs.prune_runs deletes a run's rows with the run.
    run_id: Mapped[int] = mapped_column(primary_key=True)
    paper_id: Mapped[int] = mapped_column(primary_key=True)
    rank: Mapped[int]
    score: Mapped[float]
    # Human-readable "why this paper", e.g. "+42 upvotes today · +55★ today · 2 days old".
    evidence: Mapped[str] = mapped_column(sa.Text, default="")

    __table_args__ = (sa.UniqueConstraint("run_id", "rank"),)
