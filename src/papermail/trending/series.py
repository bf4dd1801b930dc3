"""A paper's signal series as the formula reads them: aggregates, and each metric's gain over a window.

Every time is in hours before the run's ``as_of``, so the formula is plain float arithmetic. The
database side (:mod:`papermail.trending.signals`) reduces each signal series to a
:class:`MetricAggregate` with SQL aggregates; :func:`aggregate_series` is the same reduction over
plain observations, the reference the SQL is tested against.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from papermail.trending.params import TrendParams

HOUR = timedelta(hours=1)


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

    def as_series(self) -> PaperSeries:
        """The same paper as a :class:`PaperSeries` of this one window."""
        series = tuple(
            (m, total, first_ago, first_value, at_start)
            for m, total, at_start, first_ago, first_value in self.metrics
        )
        return PaperSeries(self.paper_id, self.arxiv_id, self.age_hours, self.age_known, series)


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
        """The paper as it is in the ``window``-th window."""
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
