"""The weekly window's promises (docs/trending.md), proven with hypothesis on the pure formula."""

from __future__ import annotations

from datetime import datetime, timedelta
from math import log2

import pytest
from hypothesis import given
from hypothesis import strategies as st

from papermail.trending.params import TrendParams
from papermail.trending.score import rank, score_paper
from papermail.trending.series import metric_trend, paper_signals
from tests.support.trending import NOW

WEEKLY = TrendParams(window_hours=7 * 24)
WEEK_START = NOW - WEEKLY.window
minutes = st.integers(min_value=0, max_value=29 * 24 * 60)
counts = st.integers(min_value=0, max_value=100_000)


def ago(minutes_ago: int) -> datetime:
    return NOW - timedelta(minutes=minutes_ago)


@st.composite
def rising(draw, *, min_size: int = 1) -> list[tuple[datetime, int]]:
    """A counter's observations (minutes ago), never going down."""
    times = sorted(set(draw(st.lists(minutes, min_size=min_size, max_size=8))), reverse=True)
    values = sorted(draw(st.lists(counts, min_size=len(times), max_size=len(times))))
    return [(ago(m), v) for m, v in zip(times, values, strict=True)]


@st.composite
def papers(draw) -> dict:
    return {
        "age_minutes": draw(st.integers(min_value=0, max_value=29 * 24 * 60)),
        "upvotes": draw(rising()),
        "stars": draw(st.one_of(st.just([]), rising())),
    }


def weekly_rank(field: list[dict], target: dict) -> int:
    """The target's 1-based place among ``field`` in a weekly ranking."""
    scored = [
        score_paper(
            paper_signals(
                n,
                f"2611.{n:05d}",
                ago(p["age_minutes"]),
                {"upvotes": p["upvotes"], "github_stars": p["stars"]},
                NOW,
                WEEKLY,
            ),
            WEEKLY,
        )
        for n, p in enumerate([target, *field])
    ]
    return next(place for place, s in enumerate(rank(scored), start=1) if s.paper_id == 0)


@given(
    st.lists(papers(), max_size=8),
    papers(),
    st.integers(min_value=0, max_value=7 * 24 * 60 - 1),
    st.integers(min_value=1, max_value=10_000),
)
def test_more_growth_inside_the_week_never_lowers_a_papers_weekly_rank(field, target, inside, extra):
    """Votes gained ``inside`` minutes ago (within the week) raise every later count by ``extra``."""
    before = weekly_rank(field, target)
    at = ago(inside)
    grown = [(t, v + extra if t >= at else v) for t, v in target["upvotes"]]
    if not any(t >= at for t, _ in grown):
        grown.append((at, max((v for _, v in grown), default=0) + extra))
    assert weekly_rank(field, {**target, "upvotes": grown}) <= before


@given(rising(min_size=1), st.integers(min_value=1, max_value=10_000), st.integers(0, 29 * 24 * 60))
def test_growth_before_the_week_counts_only_through_the_volume_term(series, extra, age_minutes):
    """Votes gained before the week began raise the total, never the week's gain."""
    # Make sure the series has an observation at or before the week's start, so growth before it is
    # observed rather than read off the line from publication.
    series = sorted({*series, (WEEK_START - timedelta(minutes=1), 0)})
    grown = [(t, v + extra) for t, v in series]  # every count since before the week is `extra` higher
    age_hours = max(age_minutes / 60, (NOW - series[0][0]) / timedelta(hours=1))
    born = NOW - timedelta(hours=age_hours)

    def signals(observations):
        return paper_signals(1, "2611.00001", born, {"upvotes": observations}, NOW, WEEKLY)

    plain, more = signals(series), signals(grown)
    [plain_trend] = [metric_trend(m, plain.age_hours, WEEKLY.window_hours) for m in plain.metrics]
    [more_trend] = [metric_trend(m, more.age_hours, WEEKLY.window_hours) for m in more.metrics]
    assert more_trend.gain == plain_trend.gain
    volume = WEEKLY.volume_weight * (log2(1 + more_trend.total) - log2(1 + plain_trend.total))
    difference = score_paper(more, WEEKLY).score - score_paper(plain, WEEKLY).score
    assert difference == pytest.approx(volume, abs=2e-6)


def test_the_weekly_evidence_speaks_of_the_week():
    upvotes = [(ago(6 * 24 * 60), 0), (ago(3 * 24 * 60), 200), (ago(60), 266)]
    hit = paper_signals(1, "2611.00001", ago(6 * 24 * 60 + 600), {"upvotes": upvotes}, NOW, WEEKLY)
    assert score_paper(hit, WEEKLY).evidence == "+266 upvotes this week · 6 days old"
