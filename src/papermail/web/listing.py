"""The public trending list (/trending, .json, .xml): which ranking a query asks for, and its papers.

A query names a window (``24h`` or ``7d``), topics and a page, and optionally a past period. The
live list reads the window's latest scoring run; a past period reads the run its :class:`Digest`
pinned, so ``?period=2026-W49`` shows what that week's digests were chosen from, however many runs
came after. Nothing here knows about subscribers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail.categories import UnknownCategory, canonical_category
from papermail.db.models import Digest, Frequency, Paper, ScoringRun, TrendScore
from papermail.digest.cards import PaperCard, paper_card
from papermail.digest.period import frequency_of_key, key_of, validate_period_key
from papermail.trending import (
    DAILY,
    DEFAULT_WINDOW,
    WEEKLY,
    WINDOWS,
    in_topics,
    latest_run,
    select_ranked,
    window_for,
)
from papermail.trending.totals import metric_totals

PAGE_SIZE = 25
MAX_TOPICS = 20
# The live list's "current period" of each window, for stable Atom entry ids.
WINDOW_FREQUENCIES = {DAILY: Frequency.DAILY, WEEKLY: Frequency.WEEKLY}


class BadQuery(ValueError):
    """The query string asks for something that can't exist; the message says what, in one line."""


class NoRanking(LookupError):
    """There is no ranking to show (yet, or for that period); the message names cause and remedy."""


class NotRankedYet(NoRanking):
    """Nothing was ever ranked: the public answers say the ranking is on its way (a 200, not a 404)."""


# For visitors, not operators: the commands that fix it are the CLI's and `doctor`'s to name.
RANKING_ON_ITS_WAY = (
    "The ranking is on its way: papermail is still gathering its first papers and signals. "
    "This list fills in by itself within a few minutes; please come back soon."
)


@dataclass(frozen=True)
class TrendingQuery:
    """What a visitor asked for, validated and in a canonical order (a cache key)."""

    window: str = DEFAULT_WINDOW
    topics: tuple[str, ...] = ()
    period: str | None = None
    page: int = 1

    def params(self, *, page: int | None = None) -> list[tuple[str, str]]:
        """The query string that asks for this again (for links), optionally another page."""
        pairs = [] if self.period else [("window", self.window)]
        pairs += [("topic", topic) for topic in self.topics]
        if self.period:
            pairs.append(("period", self.period))
        if (page or self.page) > 1:
            pairs.append(("page", str(page or self.page)))
        return pairs


def parse_query(
    args: Mapping[str, Sequence[str]], extra_topics: frozenset[str] = frozenset()
) -> TrendingQuery:
    """Validate ``?window=&topic=&period=&page=`` (each value a list); raise BadQuery."""
    windows = args.get("window", [])
    if len(windows) > 1:
        raise BadQuery("give at most one window")
    window = windows[0] if windows else None
    if window is not None and window not in WINDOWS:
        raise BadQuery(f"unknown window {window!r}: use one of {', '.join(WINDOWS)}")
    topics = tuple(sorted(set(args.get("topic", []))))
    if len(topics) > MAX_TOPICS:
        raise BadQuery(f"at most {MAX_TOPICS} topics at once")
    try:
        topics = tuple(sorted({t if t in extra_topics else canonical_category(t) for t in topics}))
    except UnknownCategory as exc:
        raise BadQuery(exc.for_visitors) from None
    period = _one_period(args.get("period", []))
    if period is not None:
        period_window = window_for(frequency_of_key(period))
        if window is not None and window != period_window:
            raise BadQuery(f"period {period} was ranked over the {period_window} window, not {window}")
        window = period_window
    return TrendingQuery(window or DEFAULT_WINDOW, topics, period, _one_page(args.get("page", [])))


def _one_period(values: Sequence[str]) -> str | None:
    if not values:
        return None
    if len(values) > 1:
        raise BadQuery("give at most one period")
    try:
        return validate_period_key(values[0])
    except ValueError:
        raise BadQuery(
            f"malformed period {values[0][:40]!r}: use a week like 2026-W49 or a day like 2026-12-04"
        ) from None


def _one_page(values: Sequence[str]) -> int:
    if not values:
        return 1
    if len(values) > 1 or not values[0].isdigit() or not 1 <= int(values[0]) <= 10_000:
        raise BadQuery("page must be one whole number from 1")
    return int(values[0])


@dataclass(frozen=True)
class RunStamp:
    """The scoring run a list shows: its id (the cache key) and when it was made."""

    run_id: int
    as_of: datetime
    finished_at: datetime
    period: str  # the live list's current period, or the past period asked for
    live: bool


def find_run(session: Session, query: TrendingQuery) -> RunStamp:
    """The run ``query`` reads; raise NoRanking if there is none."""
    if query.period is None:
        run = latest_run(session, query.window)
        if run is None or run.finished_at is None:
            raise NotRankedYet(RANKING_ON_ITS_WAY)
        live_period = key_of(WINDOW_FREQUENCIES[query.window], run.as_of.astimezone(UTC).date())
        return RunStamp(run.id, run.as_of, run.finished_at, live_period, live=True)
    found = session.execute(
        sa.select(ScoringRun)
        .join(Digest, Digest.scoring_run_id == ScoringRun.id)
        .where(Digest.period_key == query.period)
    ).scalar_one_or_none()
    if found is None or found.finished_at is None:
        raise NoRanking(f"no digest was planned for {query.period}, so it has no pinned ranking")
    return RunStamp(found.id, found.as_of, found.finished_at, query.period, live=False)


@dataclass(frozen=True)
class Entry:
    """One paper of the list: its place here, its place in the whole run, and how it is shown."""

    rank: int
    run_rank: int
    score: float
    arxiv_id: str
    authors: tuple[str, ...]
    primary_category: str | None
    categories: tuple[str, ...]
    published_at: datetime | None
    card: PaperCard
    signals: dict[str, int] = field(default_factory=dict)  # each metric's total (trending.totals)


@dataclass(frozen=True)
class Listing:
    """One page of a ranking."""

    query: TrendingQuery
    run: RunStamp
    total: int
    entries: list[Entry]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))


def read_listing(session: Session, query: TrendingQuery, run: RunStamp) -> Listing:
    """The page of ``run``'s ranking that ``query`` asks for; raise NoRanking past the last page."""
    ranked = select_ranked(run.run_id, query.topics)
    count = sa.select(sa.func.count()).select_from(TrendScore).where(TrendScore.run_id == run.run_id)
    if query.topics:
        count = count.join(Paper, Paper.id == TrendScore.paper_id).where(in_topics(query.topics))
    total = session.scalar(count) or 0
    offset = (query.page - 1) * PAGE_SIZE
    if query.page > 1 and offset >= total:
        raise NoRanking(f"page {query.page} is past the last page of this ranking")
    rows = session.execute(ranked.offset(offset).limit(PAGE_SIZE)).all()
    totals = metric_totals(session, [paper.id for _, paper in rows], run.as_of)
    entries = [
        Entry(
            rank=offset + n,
            run_rank=score.rank,
            score=score.score,
            arxiv_id=paper.arxiv_id,
            authors=tuple(paper.authors),
            primary_category=paper.primary_category,
            categories=tuple(paper.categories),
            published_at=paper.published_at,
            card=paper_card(paper, score.evidence),
            signals=totals.get(paper.id, {}),
        )
        for n, (score, paper) in enumerate(rows, start=1)
    ]
    return Listing(query, run, total, entries)
