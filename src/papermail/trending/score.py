"""The trendiness formula: value objects and pure functions, no I/O (docs/trending.md explains it).

A paper's score, in log2 units ("heat" halves once per half-life)::

    score = Σ_m w_m · (log2(1 + gain_m) + λ · log2(1 + total_m))  -  age_hours / half_life_hours

``gain_m`` is how much metric ``m`` (upvotes, GitHub stars, comments) grew over the run's window
(:data:`papermail.trending.windows.WINDOWS`: 24 hours for daily digests, 7 days for weekly ones),
``total_m`` its value now, ``λ`` the volume weight (at most 1, so velocity beats volume) and ``age``
the time since publication. A paper without signals scores ``-age / half_life``: it ranks on recency.

Every time is in hours before the run's ``as_of``, so the formula is plain float arithmetic. The
database side (:mod:`papermail.trending.runs`) reduces each signal series to a
:class:`MetricAggregate` with SQL aggregates; :func:`aggregate_series` is the same reduction over
plain observations, the reference the SQL is tested against.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from math import log2
from operator import attrgetter, itemgetter
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from papermail.arxiv_ids import id_month_end, id_month_start
from papermail.trending.windows import PERIOD_PHRASES, window_hours, window_named

if TYPE_CHECKING:
    from papermail.config import Settings

HOUR = timedelta(hours=1)
# Scores are rounded before ranking, so that two scores equal on paper but computed along different
# float paths are a tie (broken by arXiv id) rather than an accident of the last bit.
SCORE_DECIMALS = 6

# Metrics are handled in this order (any others follow by name); the evidence line shows the three
# that added most to the score, ties in this order.
DISPLAY_ORDER = (
    "upvotes",
    "github_stars",
    "hn_points",
    "hn_comments",
    "bluesky_likes",
    "bluesky_reposts",
    "citations",
    "comments",
)
STAR_METRIC = "github_stars"
# Each metric in a reader's words: (one, many, where). Hugging Face's own counters need no "where":
# its upvotes are what the ranking started from.
METRIC_NOUNS = {
    "upvotes": ("upvote", "upvotes", ""),
    "comments": ("comment", "comments", ""),
    "hn_points": ("point", "points", " on Hacker News"),
    "hn_comments": ("comment", "comments", " on Hacker News"),
    "bluesky_likes": ("like", "likes", " on Bluesky"),
    "bluesky_reposts": ("repost", "reposts", " on Bluesky"),
    "citations": ("citation", "citations", ""),
}
# The community counters are shown as totals ("250 points on Hacker News"): a story's or a post's
# count is what a reader recognises, and most of it is recent anyway.
TOTAL_METRICS = frozenset({"hn_points", "hn_comments", "bluesky_likes", "bluesky_reposts", "citations"})
MAX_EVIDENCE_PARTS = 3
# The weights' settings, by metric (PAPERMAIL_TREND_WEIGHT_<METRIC>; docs/trending.md gives reasons).
WEIGHT_SETTINGS = {
    "upvotes": "trend_weight_upvotes",
    "github_stars": "trend_weight_github_stars",
    "comments": "trend_weight_comments",
    "hn_points": "trend_weight_hn_points",
    "hn_comments": "trend_weight_hn_comments",
    "bluesky_likes": "trend_weight_bluesky_likes",
    "bluesky_reposts": "trend_weight_bluesky_reposts",
    "citations": "trend_weight_citations",
}


def _default_weights() -> Mapping[str, float]:
    return MappingProxyType(
        {
            "upvotes": 1.0,
            "github_stars": 0.5,
            "comments": 0.5,
            "hn_points": 0.5,
            "hn_comments": 0.25,
            "bluesky_likes": 0.4,
            "bluesky_reposts": 0.4,
            "citations": 0.5,
        }
    )


@dataclass(frozen=True)
class TrendParams:
    """The formula's parameters (from ``PAPERMAIL_TREND_*``); stored with each scoring run."""

    window_hours: float = 24.0
    half_life_hours: float = 36.0
    volume_weight: float = 0.5
    weights: Mapping[str, float] = field(default_factory=_default_weights)
    max_age_days: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings, window: str) -> TrendParams:
        """The parameters the settings ask for, for one of the named ``WINDOWS``."""
        return cls(
            window_hours=window_hours(window),
            half_life_hours=settings.trend_half_life_hours,
            volume_weight=settings.trend_volume_weight,
            weights=MappingProxyType(
                {metric: getattr(settings, setting) for metric, setting in WEIGHT_SETTINGS.items()}
            ),
            max_age_days=settings.trend_max_age_days,
        )

    @property
    def window(self) -> timedelta:
        """How far back velocity looks."""
        return timedelta(hours=self.window_hours)

    @property
    def window_name(self) -> str:
        """The window's name ("24h", "7d"), as scoring runs record it."""
        return window_named(self.window_hours)

    @property
    def max_age(self) -> timedelta:
        """Papers born longer ago than this are not ranked."""
        return timedelta(days=self.max_age_days)

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metrics that count (weight above zero), in display order."""
        weighted = {m for m, w in self.weights.items() if w > 0}
        return tuple(m for m in DISPLAY_ORDER if m in weighted) + tuple(sorted(weighted - set(DISPLAY_ORDER)))

    def as_json(self) -> dict[str, Any]:
        """Plain JSON, as recorded in ``ScoringRun.params``."""
        return {
            "window_hours": self.window_hours,
            "half_life_hours": self.half_life_hours,
            "volume_weight": self.volume_weight,
            "weights": dict(sorted(self.weights.items())),
            "max_age_days": self.max_age_days,
        }


# The per-paper value objects are NamedTuples: immutable like frozen dataclasses, and several
# times cheaper to build, which matters when a run builds a few hundred thousand of them.


class MetricAggregate(NamedTuple):
    """One signal series of one paper, reduced to what the formula needs.

    Counters are read as their running maximum: a retracted upvote or a flaky observation does not
    make a paper's history go down, and a missing observation carries the last value forward.
    """

    metric: str
    total: int  # the highest value observed at or before as_of
    at_window_start: int | None  # the highest value observed at or before the window start
    # Only for a series with nothing at or before the window start: its first observation.
    first_hours_ago: float | None = None
    first_value: int | None = None


class PaperSignals(NamedTuple):
    """A paper as the formula sees it: its age, and its aggregated signal series."""

    paper_id: int
    arxiv_id: str
    # Hours since publication: the zero of its counters too. If the date is unknown, an upper
    # bound: since the start of the month its arXiv id was issued in.
    age_hours: float
    metrics: tuple[MetricAggregate, ...] = ()  # in TrendParams.metrics order
    age_known: bool = True


class PaperSeries(NamedTuple):
    """A paper with its series aggregated for several windows at once, as a run reads them.

    Each series is a plain tuple ``(metric, total, first_hours_ago, first_value, *at_window_starts)``:
    :class:`MetricAggregate`'s numbers, with the value at the start of each window scored (in the
    order of the windows) after them. The first observation is given for a series with nothing at
    or before some window's start, and read only for those windows.
    """

    paper_id: int
    arxiv_id: str
    age_hours: float
    age_known: bool
    series: Sequence[tuple[Any, ...]]  # in TrendParams.metrics order

    def for_window(self, window: int) -> PaperSignals:
        """The paper as :func:`score_paper` sees it in the ``window``-th window."""
        aggregates = tuple(
            MetricAggregate(metric, total, None, first_ago, first_value)
            if (at_start := at_starts[window]) is None
            else MetricAggregate(metric, total, at_start)
            for metric, total, first_ago, first_value, *at_starts in self.series
        )
        return PaperSignals(self.paper_id, self.arxiv_id, self.age_hours, aggregates, self.age_known)


class MetricTrend(NamedTuple):
    """A metric's total now and its estimated gain over the window."""

    metric: str
    total: int
    gain: float


class ScoredPaper(NamedTuple):
    """A paper's score and the one-line evidence that explains it."""

    paper_id: int
    arxiv_id: str
    score: float
    evidence: str


def hours_before(as_of: datetime, at: datetime) -> float:
    """How many hours ``at`` lies before ``as_of`` (negative if after)."""
    return (as_of - at) / HOUR


def aggregate_series(
    metric: str, observations: Iterable[tuple[datetime, int]], as_of: datetime, window_hours: float
) -> MetricAggregate | None:
    """Reduce one series of (observed_at, value) to its aggregate; None if nothing is observed yet."""
    seen = [(at, value) for at, value in observations if at <= as_of]
    if not seen:
        return None
    start = as_of - timedelta(hours=window_hours)
    total = max(value for _, value in seen)
    before = [value for at, value in seen if at <= start]
    if before:
        return MetricAggregate(metric, total, max(before))
    first_at = min(at for at, _ in seen)
    first_value = max(value for at, value in seen if at == first_at)
    return MetricAggregate(metric, total, None, hours_before(as_of, first_at), first_value)


def paper_signals(
    paper_id: int,
    arxiv_id: str,
    born_at: datetime,
    observations: Mapping[str, Iterable[tuple[datetime, int]]],
    as_of: datetime,
    params: TrendParams,
    *,
    age_known: bool = True,
) -> PaperSignals:
    """One paper's signals from its raw observations by metric: what the bulk query computes."""
    metrics = tuple(
        aggregate
        for metric in params.metrics
        if (aggregate := aggregate_series(metric, observations.get(metric, ()), as_of, params.window_hours))
    )
    return PaperSignals(paper_id, arxiv_id, hours_before(as_of, born_at), metrics, age_known)


def metric_trend(aggregate: MetricAggregate, age_hours: float, window_hours: float) -> MetricTrend:
    """The total now and the gain over the window, from the value at the window start."""
    metric, total, at_start, first_ago, first_value = aggregate
    if total < 0:
        total = 0
    return MetricTrend(
        metric, total, window_gain(total, at_start, first_ago, first_value, age_hours, window_hours)
    )


def window_gain(
    total: int,
    at_start: float | None,
    first_ago: float | None,
    first_value: int | None,
    age_hours: float,
    window_hours: float,
) -> float:
    """A series' gain over the window: ``total`` (at least 0) less its value at the window start.

    That value is the last one observed at or before the window start. A series first observed
    inside the window (``at_start`` None) is assumed to have grown linearly from zero at the
    paper's birth to its first observation, so a paper we only just noticed is credited its
    average rate, not its whole total.
    """
    # Conditionals rather than max(): a run calls this for every series of every paper and window.
    if at_start is None:
        # On the axis of hours before as_of: the window starts ``window_hours`` ago.
        first_ago = first_ago or 0.0
        first_value = first_value if first_value and first_value > 0 else 0
        anchor_ago = (
            age_hours if age_hours > first_ago else first_ago
        )  # birth, never after the first observation
        if window_hours >= anchor_ago:
            at_start = 0.0
        elif window_hours <= first_ago:  # not produced by the aggregation; read as "observed before"
            at_start = first_value
        else:
            at_start = first_value * (anchor_ago - window_hours) / (anchor_ago - first_ago)
    elif at_start < 0:
        at_start = 0
    gain = total - at_start
    return gain if gain > 0 else 0.0


def trend_score(trends: Iterable[MetricTrend], age_hours: float, params: TrendParams) -> float:
    """The score in log2 units: weighted log velocity plus damped log volume, minus decayed age."""
    weights, volume_weight = params.weights, params.volume_weight
    activity = 0.0
    for metric, total, gain in trends:  # unpacked: a NamedTuple's attributes cost a call each
        activity += weights.get(metric, 0.0) * (log2(1 + gain) + volume_weight * log2(1 + total))
    return round(activity - (age_hours if age_hours > 0 else 0.0) / params.half_life_hours, SCORE_DECIMALS)


def score_paper(paper: PaperSignals, params: TrendParams) -> ScoredPaper:
    """Score one paper and say why."""
    weights, window_hours = params.weights, params.window_hours
    paper_id, arxiv_id, age_hours, metrics, age_known = paper
    # m[0] is the metric name (unpacked, as below: a NamedTuple attribute costs a call).
    trends = [metric_trend(m, age_hours, window_hours) for m in metrics if weights.get(m[0], 0.0) > 0]
    return ScoredPaper(
        paper_id,
        arxiv_id,
        trend_score(trends, age_hours, params),
        build_evidence(
            trends,
            age_hours,
            window_hours,
            age_known=age_known,
            weights=weights,
            volume_weight=params.volume_weight,
            arxiv_id=arxiv_id,
        ),
    )


def score_paper_windows(paper: PaperSeries, windows: Sequence[TrendParams]) -> tuple[ScoredPaper, ...]:
    """:func:`score_paper` in each of ``windows`` (parameters that differ only in their window).

    Equal to scoring ``paper.for_window(n)`` with ``windows[n]``, but what every window shares (the
    volume terms, the age term, the age in words) is computed once, and no per-window objects are
    built: a run calls this for every paper.
    """
    paper_id, arxiv_id, age_hours, age_known, series = paper
    shared = windows[0]
    weights, volume_weight = shared.weights, shared.volume_weight
    age = age_in_words(age_hours, arxiv_id, age_known=age_known)
    decay = (age_hours if age_hours > 0 else 0.0) / shared.half_life_hours
    counted = []  # the series that count, with what every window shares
    for metric, total, first_ago, first_value, *at_starts in series:
        if (weight := weights.get(metric, 0.0)) > 0:
            total = total if total > 0 else 0
            volume = volume_weight * log2(1 + total)
            counted.append((metric, total, weight, volume, first_ago, first_value, at_starts))
    if not counted:
        cold = ScoredPaper(paper_id, arxiv_id, round(0.0 - decay, SCORE_DECIMALS), f"no signals yet · {age}")
        return (cold,) * len(windows)
    scored = []
    for window, params in enumerate(windows):
        window_hours, per = params.window_hours, _per_window(params.window_hours)
        activity, parts = 0.0, []
        for metric, total, weight, volume, first_ago, first_value, at_starts in counted:
            if (at_start := at_starts[window]) is not None:  # window_gain's common case, inlined
                gain = total - (at_start if at_start > 0 else 0)
                if gain < 0:
                    gain = 0.0
            else:
                gain = window_gain(total, None, first_ago, first_value, age_hours, window_hours)
            # The same float operations in the same order as trend_score: bit-identical scores.
            added = weight * (log2(1 + gain) + volume)
            activity += added
            parts.append((added, metric, total, gain))  # worded only if among the first three
        evidence = _evidence_line(parts, per, age)
        scored.append(ScoredPaper(paper_id, arxiv_id, round(activity - decay, SCORE_DECIMALS), evidence))
    return tuple(scored)


def rank(scored: Iterable[ScoredPaper]) -> list[ScoredPaper]:
    """Best first; equal scores in arXiv id order, so the same data always ranks the same way."""
    # Two stable sorts (ties keep the first sort's order) avoid building a key tuple per paper.
    by_id = sorted(scored, key=attrgetter("arxiv_id"))
    return sorted(by_id, key=attrgetter("score"), reverse=True)


# -- evidence: "+340★ this week · 250 points on Hacker News · 57 likes on Bluesky · 4 days old" ------


def build_evidence(
    trends: Sequence[MetricTrend],
    age_hours: float,
    window_hours: float,
    *,
    age_known: bool = True,
    weights: Mapping[str, float] | None = None,
    volume_weight: float = 0.5,
    arxiv_id: str = "",
) -> str:
    """The "why this paper" line shown in the ranking and in digests.

    At most three metrics, those that added most to the score first (with ``weights``; without,
    in the order given), then the age.
    """
    weights = weights or {}
    parts = [
        (
            weights.get(metric, 0.0) * (log2(1 + gain) + volume_weight * log2(1 + max(total, 0))),
            metric,
            total,
            gain,
        )
        for metric, total, gain in trends
    ]
    age = age_in_words(age_hours, arxiv_id, age_known=age_known)
    return _evidence_line(parts, _per_window(window_hours), age)


def _evidence_line(parts: list[tuple[float, str, int, float]], per: str, age: str) -> str:
    """The metrics that added most (ties in metric order), worded, and the age, joined by " · ".

    ``parts`` holds (what the metric added to the score, metric, total, gain); a metric with
    nothing to show (no stars yet, say) gives its place to the next.
    """
    if len(parts) > 1:
        parts.sort(key=_ADDED, reverse=True)  # stable: ties keep the metric order
    shown, room = [], MAX_EVIDENCE_PARTS
    for _, metric, total, gain in parts:
        if text := _metric_evidence(metric, total, gain, per):
            shown.append(text)
            room -= 1
            if not room:
                break
    if not shown:
        return f"no signals yet · {age}"
    shown.append(age)
    return " · ".join(shown)


_ADDED = itemgetter(0)  # what a metric added to the score


@cache
def _per_window(window_hours: float) -> str:
    """The period a gain is over, in words where the window has a name: "today", "this week"."""
    return PERIOD_PHRASES.get(name := window_named(window_hours)) or f"in {name}"


def _metric_evidence(metric: str, total: int, gain: float, per: str) -> str:
    gain = int(gain + 0.5)  # rounded half up; gains are never negative
    if metric == STAR_METRIC:
        if total <= 0:
            return ""
        return f"+{gain:,}★ {per}" if gain else f"{total:,}★"
    one, many, where = METRIC_NOUNS.get(metric, (metric, metric, ""))
    if gain and metric not in TOTAL_METRICS:
        return f"+{gain:,} {one if gain == 1 else many} {per}"
    if total > 0:
        return f"{total:,} {one if total == 1 else many}{where}"
    return ""


# A window as "24h", "1.5h" or, for whole days from two on, "7d".
format_window = window_named


def age_in_words(age_hours: float, arxiv_id: str, *, age_known: bool) -> str:
    """A paper's age for the evidence line: exact when known, else bounded by its id's month."""
    return format_age(age_hours) if age_known else format_unknown_age(age_hours, arxiv_id)


def format_unknown_age(age_hours: float, arxiv_id: str) -> str:
    """The age of a paper whose date is known only to lie in its id's month, as both bounds allow.

    ``age_hours`` is since the month's start (the oldest it can be); it is at least as old as the
    time since the month's end: "6 to 36 days old", or "up to 6 days old" while the month lasts.
    """
    month_hours = _id_month_hours(arxiv_id)
    youngest = age_hours - month_hours
    if not month_hours or youngest < 24:  # without an id month, only the upper bound is known
        return format_age_bound(age_hours)
    oldest = format_age(age_hours)
    if int(youngest // 24) == int(age_hours // 24):
        return oldest
    return f"{int(youngest // 24)} to {oldest}"


def _id_month_hours(arxiv_id: str) -> float:
    start, end = id_month_start(arxiv_id), id_month_end(arxiv_id)
    return (end - start) / HOUR if start and end else 0.0


def format_age_bound(age_hours: float) -> str:
    """An upper bound on an age, for a paper of unknown date: "up to 4 days old"."""
    if age_hours < 1:
        return "up to an hour old"
    return f"up to {format_age(age_hours)}"


def format_age(age_hours: float) -> str:
    """An age as "under an hour old", "5 hours old", "1 day old", "12 days old"."""
    return _age_in_whole_hours(int(age_hours) if age_hours >= 1 else 0)


@cache  # a run formats an age per paper and window, from a few hundred distinct values
def _age_in_whole_hours(hours: int) -> str:
    if hours < 1:
        return "under an hour old"
    if hours < 24:
        return f"{hours} hour{'s' if hours != 1 else ''} old"
    days = hours // 24
    return f"{days} day{'s' if days != 1 else ''} old"
