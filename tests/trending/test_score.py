"""The formula on its own: the behaviour docs/trending.md promises, proven with hypothesis."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from papermail.trending.evidence import format_age
from papermail.trending.params import TrendParams
from papermail.trending.score import ScoredPaper, build_evidence, rank, score_paper, score_paper_windows
from papermail.trending.series import (
    MetricAggregate,
    MetricTrend,
    PaperSeries,
    aggregate_series,
    metric_trend,
    paper_signals,
)
from papermail.trending.windows import window_named
from tests.support.trending import NOW

DEFAULTS = TrendParams()
METRICS = ("upvotes", "github_stars", "comments")
Observations = dict[str, list[tuple[datetime, int]]]


def ago(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


def score(observations: Observations, age_hours: float, as_of: datetime = NOW) -> float:
    """The score of one paper born ``age_hours`` before NOW, scored at ``as_of``."""
    return score_paper(
        paper_signals(1, "2611.00001", ago(age_hours), observations, as_of, DEFAULTS), DEFAULTS
    ).score


# -- strategies: sparse, irregular series of whole minutes (as the fetcher stores them) ----------

hours_ago = st.integers(min_value=0, max_value=40 * 24 * 60).map(lambda minutes: minutes / 60)
ages = st.floats(min_value=0, max_value=30 * 24, allow_nan=False)
counts = st.integers(min_value=0, max_value=1_000_000)
series = st.lists(st.tuples(hours_ago.map(ago), counts), max_size=12)
observation_sets = st.dictionaries(st.sampled_from(METRICS), series, max_size=3)


@st.composite
def rising_series(draw) -> list[tuple[datetime, int]]:
    """A counter's observations, oldest first, never going down."""
    times = sorted(set(draw(st.lists(hours_ago, min_size=1, max_size=12))))
    values = sorted(draw(st.lists(counts, min_size=len(times), max_size=len(times))))
    return [(ago(h), v) for h, v in zip(reversed(times), values, strict=True)]


# -- the properties the issue asks for ------------------------------------------------------------


@given(observation_sets, ages, st.floats(min_value=0, max_value=24, exclude_max=True), st.integers(1, 10_000))
def test_more_upvotes_in_the_same_window_never_lower_a_score(
    observations, age_hours, gained_hours_ago, extra
):
    """Gaining ``extra`` upvotes inside the window raises every later count; the score can't drop."""
    gained_at = ago(gained_hours_ago)
    upvotes = observations.get("upvotes", [])
    raised = [(at, value + extra if at >= gained_at else value) for at, value in upvotes]
    if not any(at >= gained_at for at, _ in upvotes):  # nothing observed since: observe it now
        before = [value for at, value in upvotes if at < gained_at]
        raised.append((gained_at, max(before, default=0) + extra))
    assert score({**observations, "upvotes": raised}, age_hours) >= score(observations, age_hours)


@given(observation_sets, ages, st.floats(min_value=0, max_value=60 * 24, allow_nan=False))
def test_moving_the_clock_forward_never_raises_a_score_without_new_signals(
    observations, age_hours, later_hours
):
    later = NOW + timedelta(hours=later_hours)
    assert score(observations, age_hours, as_of=later) <= score(observations, age_hours)


@given(
    st.integers(min_value=1, max_value=100_000),
    st.floats(min_value=1, max_value=4),
    st.floats(min_value=48, max_value=30 * 24),
    st.floats(min_value=0, max_value=1),
    st.sampled_from(METRICS),
)
def test_velocity_beats_volume(gained, volume_ratio, age_hours, younger_share, metric):
    """Gaining g within the window outranks an older-or-equal paper that gained up to 4g before it."""
    earlier_total = int(gained * volume_ratio)
    recent = {metric: [(ago(30), 0), (ago(1), gained)]}
    earlier = {
        metric: [(ago(age_hours - 1), 0), (ago(age_hours - 12), earlier_total), (ago(0), earlier_total)]
    }
    assert score(recent, age_hours * younger_share + 30 * (1 - younger_share)) > score(earlier, age_hours)


@given(
    st.lists(st.tuples(st.sampled_from([1.0, 2.5, -1.25]), st.integers(0, 10**6)), unique_by=lambda t: t[1])
)
def test_ranking_is_deterministic_and_breaks_ties_by_arxiv_id(entries):
    papers = [ScoredPaper(i, f"2611.{n:06d}", s, "") for i, (s, n) in enumerate(entries)]
    shuffled = papers[:]
    random.Random(len(papers)).shuffle(shuffled)
    ranked = rank(shuffled)
    assert ranked == rank(papers)
    assert ranked == sorted(papers, key=lambda p: (-p.score, p.arxiv_id))


@given(ages, ages)
def test_without_signals_newer_ranks_higher(age_a, age_b):
    """Cold start: a brand-new paper with no signals still ranks, on recency."""
    assume(abs(age_a - age_b) >= 0.001)
    newer, older = sorted((age_a, age_b))
    assert score({}, newer) > score({}, older)


@given(rising_series(), st.data())
def test_a_missing_observation_is_not_a_drop(observations, data):
    """Dropping observations between the one the window starts from and the latest changes nothing.

    The window starts from the last observation at or before its start or, if there is none, from
    the first one (the end of the line from zero at publication).
    """
    start = NOW - DEFAULTS.window
    before = [o for o in observations if o[0] <= start]
    anchor = before[-1] if before else observations[0]
    middle = [o for o in observations if anchor[0] < o[0] < observations[-1][0]]
    dropped = data.draw(st.lists(st.sampled_from(middle), unique=True) if middle else st.just([]))
    thinned = [o for o in observations if o not in dropped]
    assert score({"upvotes": thinned}, 48) == score({"upvotes": observations}, 48)


# -- several windows at once ---------------------------------------------------------------------

WINDOW_SETS = [
    [TrendParams(window_hours=24), TrendParams(window_hours=7 * 24)],
    [TrendParams(window_hours=7 * 24, weights={"comments": 2.0, "upvotes": 0.0}, volume_weight=0.25)],
    [TrendParams(window_hours=h, half_life_hours=12) for h in (1.5, 24, 36, 7 * 24)],
]
maybe_count = st.none() | st.integers(min_value=-5, max_value=1_000_000)


@st.composite
def paper_series(draw, windows: int) -> PaperSeries:
    """A paper as the bulk read delivers it, with series of any shape (the formula's whole domain)."""
    metrics = draw(st.lists(st.sampled_from([*METRICS, "forks"]), unique=True, max_size=4))
    series = [
        (
            metric,
            draw(st.integers(min_value=-5, max_value=1_000_000)),
            draw(st.none() | st.floats(min_value=0, max_value=40 * 24)),
            draw(maybe_count),
            *draw(st.lists(maybe_count, min_size=windows, max_size=windows)),
        )
        for metric in metrics
    ]
    return PaperSeries(7, "2611.00007", draw(st.floats(-1, 40 * 24)), draw(st.booleans()), series)


@given(st.data())
def test_scoring_all_windows_at_once_equals_scoring_each(data):
    """What a run computes in one pass is, bit for bit, the formula applied window by window."""
    windows = data.draw(st.sampled_from(WINDOW_SETS))
    paper = data.draw(paper_series(len(windows)))
    assert score_paper_windows(paper, windows) == tuple(
        score_paper(paper.for_window(n), params) for n, params in enumerate(windows)
    )


# -- the time series arithmetic, by example --------------------------------------------------------


def test_velocity_starts_from_the_last_value_at_or_before_the_window_start():
    upvotes = [(ago(30), 10), (ago(26), 18), (ago(5), 60)]  # hours 25..6 were never observed
    assert aggregate_series("upvotes", upvotes, NOW, 24) == MetricAggregate("upvotes", 60, 18)
    assert metric_trend(MetricAggregate("upvotes", 60, 18), 48, 24) == MetricTrend("upvotes", 60, 42)


def test_a_series_first_seen_inside_the_window_grew_linearly_since_publication():
    # Published 30h ago, first seen 10h ago with 40: 12 of them are credited to before the window.
    aggregate = aggregate_series("upvotes", [(ago(10), 40), (ago(0), 64)], NOW, 24)
    assert aggregate == MetricAggregate("upvotes", 64, None, 10.0, 40)
    assert metric_trend(aggregate, 30, 24) == MetricTrend("upvotes", 64, pytest.approx(52))


def test_a_paper_published_inside_the_window_gained_everything_in_it():
    aggregate = aggregate_series("github_stars", [(ago(3), 500)], NOW, 24)
    assert metric_trend(aggregate, 5, 24).gain == 500


def test_a_retracted_upvote_does_not_lower_the_history():
    upvotes = [(ago(30), 50), (ago(20), 49), (ago(1), 49)]
    assert aggregate_series("upvotes", upvotes, NOW, 24) == MetricAggregate("upvotes", 50, 50)
    assert score({"upvotes": upvotes}, 48) == score({"upvotes": [(ago(30), 50)]}, 48)


def test_observations_after_as_of_are_ignored():
    assert aggregate_series("upvotes", [(NOW + timedelta(minutes=1), 5)], NOW, 24) is None


def test_a_metric_weighted_zero_is_ignored_and_not_shown():
    params = TrendParams(weights={"upvotes": 1.0, "comments": 0.0})
    paper = paper_signals(1, "x", ago(2), {"comments": [(ago(1), 30)]}, NOW, params)
    assert paper.metrics == ()
    assert score_paper(paper, params).evidence == "no signals yet · 2 hours old"


def test_worked_example_from_the_docs():
    """The four papers of docs/trending.md, with the scores printed there."""
    papers = {
        "A": paper_signals(
            1,
            "A",
            ago(50),
            {
                "upvotes": [(ago(26), 18), (ago(20), 35), (ago(1), 60)],
                "github_stars": [(ago(30), 255), (ago(2), 310)],
            },
            NOW,
            DEFAULTS,
        ),
        "B": paper_signals(
            2,
            "B",
            ago(9 * 24),
            {"upvotes": [(ago(200), 150), (ago(150), 400), (ago(3), 400)], "comments": [(ago(150), 40)]},
            NOW,
            DEFAULTS,
        ),
        "C": paper_signals(3, "C", ago(3), {}, NOW, DEFAULTS),
        "D": paper_signals(4, "D", ago(30), {"upvotes": [(ago(10), 40), (ago(0), 64)]}, NOW, DEFAULTS),
    }
    scored = {name: score_paper(p, DEFAULTS) for name, p in papers.items()}
    assert {name: s.score for name, s in scored.items()} == {
        "A": 11.976615,
        "B": -0.336883,
        "C": -0.083333,
        "D": 7.905771,
    }
    assert [s.arxiv_id for s in rank(scored.values())] == ["A", "D", "C", "B"]
    assert scored["A"].evidence == "+42 upvotes today · +55★ today · 2 days old"
    assert scored["B"].evidence == "400 upvotes · 40 comments · 9 days old"
    assert scored["C"].evidence == "no signals yet · 3 hours old"
    assert scored["D"].evidence == "+52 upvotes today · 1 day old"


# -- evidence --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trends", "expected"),
    [
        ([MetricTrend("upvotes", 1, 1.0)], "+1 upvote today · 2 days old"),
        ([MetricTrend("comments", 1, 0.0)], "1 comment · 2 days old"),
        ([MetricTrend("github_stars", 12_400, 0.4)], "12,400★ · 2 days old"),
        (
            [MetricTrend("github_stars", 0, 0.0), MetricTrend("upvotes", 0, 0.0)],
            "no signals yet · 2 days old",
        ),
        (
            [MetricTrend("upvotes", 5, 0.0), MetricTrend("comments", 3, 2.5), MetricTrend("forks", 9, 2.0)],
            "5 upvotes · +3 comments today · +2 forks today · 2 days old",
        ),
    ],
)
def test_evidence_lines(trends, expected):
    assert build_evidence(trends, 49.5, 24) == expected


@pytest.mark.parametrize(
    ("age_hours", "expected"),
    [(-1, "under an hour old"), (0.99, "under an hour old"), (1, "1 hour old"), (23.9, "23 hours old"),
     (24, "1 day old"), (47.9, "1 day old"), (48, "2 days old")],
)  # fmt: skip
def test_format_age(age_hours, expected):
    assert format_age(age_hours) == expected


@pytest.mark.parametrize(
    ("hours", "expected"), [(24, "24h"), (1.5, "1.5h"), (36, "36h"), (48, "2d"), (168, "7d")]
)
def test_window_named(hours, expected):
    assert window_named(hours) == expected


def test_robotics_example_from_the_docs():
    """docs/trending.md: stars and a Hacker News story, no Hugging Face listing, weekly window."""
    week = TrendParams(window_hours=168)
    observed = {
        "github_stars": [(ago(98), 40), (ago(2), 340)],
        "hn_points": [(ago(80), 180), (ago(2), 250)],
        "hn_comments": [(ago(80), 50), (ago(2), 80)],
        "bluesky_likes": [(ago(70), 30), (ago(2), 57)],
    }
    robot = score_paper(paper_signals(1, "2611.50001", ago(104), observed, NOW, week), week)
    assert robot.score == 15.292222
    assert robot.evidence == "+340★ this week · 250 points on Hacker News · 57 likes on Bluesky · 4 days old"
    bluesky = {"bluesky_likes": [(ago(30), 30)], "bluesky_reposts": [(ago(30), 2)]}
    runner_up = score_paper(paper_signals(2, "2611.50004", ago(56), bluesky, NOW, week), week)
    assert runner_up.score == 2.36794
    assert runner_up.evidence == "30 likes on Bluesky · 2 reposts on Bluesky · 2 days old"
