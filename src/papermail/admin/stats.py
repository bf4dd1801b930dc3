"""The numbers an operator checks: subscribers, a period's deliveries and bounces, fetches, trending.

Each part is one or two aggregate queries, whatever the size of the tables.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail.admin.deliveries import latest_period_key, status_counts
from papermail.admin.nothing_yet import nothing_ranked_reason
from papermail.bounces.rates import PeriodRates, period_rates, recent_period_keys
from papermail.db.bookkeeping import FetchProblem, FetchRun
from papermail.db.models import Delivery, DeliveryStatus, ScoringRun, Subscriber, SubscriberStatus
from papermail.digest.preview import latest_run_id
from papermail.signup.confirmations import confirmation_counts
from papermail.sources.records import FetchTotals, totals_of
from papermail.trending import ranked_papers
from papermail.trending.runs import ranked_without_category

TOP_TRENDING = 5
PROBLEMS_SHOWN_PER_FETCH = 5
# What ranked papers without an arXiv category mean, said alike by ``stats`` and ``doctor``.
UNCATEGORISED = "no topic subscriber gets them; each fetch asks the arXiv API again"


@dataclass(frozen=True)
class BounceRate:
    """Permanent SMTP rejections (5xx) among the messages handed to SMTP in a period."""

    bounced: int
    handed_over: int

    @property
    def rate(self) -> float | None:
        return self.bounced / self.handed_over if self.handed_over else None


@dataclass
class FetchSummary(FetchTotals):
    """The last fetch of one source, with the first few of its problems."""

    source: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    problems: list[str]
    problem_count: int


@dataclass(frozen=True)
class TrendingPaper:
    """A paper's place in the latest ranking."""

    rank: int
    score: float
    arxiv_id: str
    title: str
    evidence: str


@dataclass(frozen=True)
class Stats:
    """Everything ``papermail stats`` shows."""

    subscribers: dict[str, int]
    period_key: str | None
    deliveries: dict[str, int]
    confirmations: dict[str, int]  # confirmation emails owed, sent, failed, …
    bounces: BounceRate
    fetches: list[FetchSummary]
    scoring_run_as_of: datetime | None
    trending: list[TrendingPaper]
    nothing_ranked: str | None = None  # why ``trending`` is empty, with the next command
    # Hard-bounce and complaint rates of the latest periods, newest first (papermail.bounces.rates).
    report_rates: list[PeriodRates] = field(default_factory=list)
    # Papers of the latest ranking still without an arXiv category: no topic subscriber gets them.
    ranked_without_category: int | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["bounces"]["rate"] = self.bounces.rate
        data["report_rates"] = [rates.as_dict() for rates in self.report_rates]
        return data


def collect_stats(session: Session, period_key: str | None = None) -> Stats:
    """Gather the stats; ``period_key`` defaults to the latest planned period."""
    period_key = period_key or latest_period_key(session)
    run_id = latest_run_id(session)
    run = session.get(ScoringRun, run_id) if run_id is not None else None
    return Stats(
        subscribers=subscriber_counts(session),
        period_key=period_key,
        deliveries=status_counts(session, [period_key] if period_key else []),
        confirmations=confirmation_counts(session),
        bounces=bounce_rate(session, period_key),
        fetches=last_fetches(session),
        scoring_run_as_of=run.as_of if run else None,
        trending=top_trending(session, run.id, TOP_TRENDING) if run else [],
        nothing_ranked=nothing_ranked_reason(session, run),
        report_rates=period_rates(session, recent_period_keys(session)),
        ranked_without_category=ranked_without_category(session, run.id) if run else None,
    )


def subscriber_counts(session: Session) -> dict[str, int]:
    """Subscribers by status, every status listed."""
    query = sa.select(Subscriber.status, sa.func.count()).group_by(Subscriber.status)
    found = {status.value: count for status, count in session.execute(query)}
    return {status.value: found.get(status.value, 0) for status in SubscriberStatus}


def bounce_rate(session: Session, period_key: str | None) -> BounceRate:
    """Hard rejections over messages handed to SMTP (sent plus rejected) in the period."""
    if period_key is None:
        return BounceRate(0, 0)
    rejected = sa.and_(Delivery.status == DeliveryStatus.FAILED, Delivery.last_smtp_code.between(500, 599))
    query = sa.select(
        sa.func.count().filter(rejected),
        sa.func.count().filter(sa.or_(rejected, Delivery.status == DeliveryStatus.SENT)),
    ).where(Delivery.period_key == period_key)
    bounced, handed_over = session.execute(query).one()
    return BounceRate(bounced, handed_over)


def last_fetches(session: Session) -> list[FetchSummary]:
    """The most recent fetch run of each source, with its first problems."""
    latest = (
        sa.select(FetchRun.source, sa.func.max(FetchRun.started_at).label("started_at"))
        .group_by(FetchRun.source)
        .subquery()
    )
    runs = session.scalars(
        sa.select(FetchRun)
        .join(latest, sa.and_(FetchRun.source == latest.c.source, FetchRun.started_at == latest.c.started_at))
        .order_by(FetchRun.source)
    ).all()
    problems = _first_problems(session, [run.id for run in runs])
    return [
        FetchSummary(
            source=run.source,
            started_at=run.started_at,
            finished_at=run.finished_at,
            status=run.status.value,
            **totals_of(run),
            problems=problems.get(run.id, ([], 0))[0],
            problem_count=problems.get(run.id, ([], 0))[1],
        )
        for run in runs
    ]


def _first_problems(session: Session, run_ids: list[int]) -> dict[int, tuple[list[str], int]]:
    """Per run: the first few problems as text, and how many there are in all."""
    if not run_ids:
        return {}
    numbered = sa.select(
        FetchProblem.run_id,
        FetchProblem.kind,
        FetchProblem.reason,
        sa.func.coalesce(FetchProblem.entry_ref, FetchProblem.url).label("where"),
        sa.func.row_number().over(partition_by=FetchProblem.run_id, order_by=FetchProblem.id).label("n"),
        sa.func.count().over(partition_by=FetchProblem.run_id).label("total"),
    ).where(FetchProblem.run_id.in_(run_ids))
    numbered = numbered.subquery()
    query = (
        sa.select(numbered)
        .where(numbered.c.n <= PROBLEMS_SHOWN_PER_FETCH)
        .order_by(numbered.c.run_id, numbered.c.n)
    )
    found: dict[int, tuple[list[str], int]] = {}
    for row in session.execute(query):
        shown, _total = found.setdefault(row.run_id, ([], row.total))
        shown.append(f"{row.kind}: {row.reason}" + (f" ({row.where})" if row.where else ""))
    return found


def top_trending(session: Session, run_id: int, limit: int) -> list[TrendingPaper]:
    """The top of a ranking, with each paper's evidence line."""
    return [
        TrendingPaper(row.rank, row.score, row.paper.arxiv_id, row.paper.title, row.evidence)
        for row in ranked_papers(session, run_id, limit=limit)
    ]
