"""The trendiness formula: pure functions, no I/O (docs/trending.md explains it).

A paper's score, in log2 units ("heat" halves once per half-life)::

    score = Σ_m w_m · (log2(1 + gain_m) + λ · log2(1 + total_m))  -  age_hours / half_life_hours

``gain_m`` is how much metric ``m`` (upvotes, GitHub stars, comments) grew over the run's window
(:data:`papermail.trending.windows.WINDOWS`: 24 hours for daily digests, 7 days for weekly ones),
``total_m`` its value now, ``λ`` the volume weight (at most 1, so velocity beats volume) and ``age``
the time since publication. A paper without signals scores ``-age / half_life``: it ranks on recency.

The series come reduced by :mod:`.series`, the parameters from :mod:`.params`; the "why" line each
score comes with is worded by :mod:`.evidence`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from math import log2
from operator import attrgetter
from typing import NamedTuple

from papermail.trending.evidence import age_in_words, evidence_line, no_signals_yet, per_window
from papermail.trending.params import TrendParams
from papermail.trending.series import MetricTrend, PaperSeries, PaperSignals, window_gain

# Scores are rounded before ranking, so that two scores equal on paper but computed along different
# float paths are a tie (broken by arXiv id) rather than an accident of the last bit.
SCORE_DECIMALS = 6


class ScoredPaper(NamedTuple):
    """A paper's score and the one-line evidence that explains it."""

    paper_id: int
    arxiv_id: str
    score: float
    evidence: str


def metric_term(weight: float, gain: float, total: int, volume_weight: float) -> float:
    """What one metric adds to the score: its weighted log velocity plus its damped log volume."""
    return weight * (log2(1 + gain) + volume_weight * log2(1 + total))


def score_paper(paper: PaperSignals, params: TrendParams) -> ScoredPaper:
    """Score one paper and say why."""
    return score_paper_windows(paper.as_series(), (params,))[0]


def score_paper_windows(paper: PaperSeries, windows: Sequence[TrendParams]) -> tuple[ScoredPaper, ...]:
    """:func:`score_paper` in each of ``windows`` (parameters that differ only in their window).

    What every window shares (the age term, the age in words) is computed once, and no per-window
    objects are built: a run calls this for every paper.
    """
    paper_id, arxiv_id, age_hours, age_known, series = paper
    shared = windows[0]
    weights, volume_weight = shared.weights, shared.volume_weight
    age = age_in_words(age_hours, arxiv_id, age_known=age_known)
    decay = (age_hours if age_hours > 0 else 0.0) / shared.half_life_hours
    counted = []  # the series that count, with their weight
    for metric, total, first_ago, first_value, *at_starts in series:
        if (weight := weights.get(metric, 0.0)) > 0:
            counted.append((metric, total if total > 0 else 0, weight, first_ago, first_value, at_starts))
    if not counted:
        cold = ScoredPaper(paper_id, arxiv_id, round(0.0 - decay, SCORE_DECIMALS), no_signals_yet(age))
        return (cold,) * len(windows)
    scored = []
    for window, params in enumerate(windows):
        window_hours, per = params.window_hours, per_window(params.window_hours)
        activity, parts = 0.0, []
        for metric, total, weight, first_ago, first_value, at_starts in counted:
            if (at_start := at_starts[window]) is not None:  # window_gain's common case, inlined
                gain = total - (at_start if at_start > 0 else 0)
                if gain < 0:
                    gain = 0.0
            else:
                gain = window_gain(total, None, first_ago, first_value, age_hours, window_hours)
            added = metric_term(weight, gain, total, volume_weight)
            activity += added
            parts.append((added, metric, total, gain))  # worded only if among the first three
        evidence = evidence_line(parts, per, age)
        scored.append(ScoredPaper(paper_id, arxiv_id, round(activity - decay, SCORE_DECIMALS), evidence))
    return tuple(scored)


def build_evidence(
    trends: Sequence[MetricTrend],
    age_hours: float,
    window_hours: float,
    *,
    age_known: bool = True,
    arxiv_id: str = "",
) -> str:
    """The "why this paper" line of these trends, worded as in the ranking and in digests.

    At most three metrics, in the order given, then the age.
    """
    parts = [(0.0, metric, total, gain) for metric, total, gain in trends]  # nothing weighs more
    age = age_in_words(age_hours, arxiv_id, age_known=age_known)
    return evidence_line(parts, per_window(window_hours), age)


def rank(scored: Iterable[ScoredPaper]) -> list[ScoredPaper]:
    """Best first; equal scores in arXiv id order, so the same data always ranks the same way."""
    # Two stable sorts (ties keep the first sort's order) avoid building a key tuple per paper.
    by_id = sorted(scored, key=attrgetter("arxiv_id"))
    return sorted(by_id, key=attrgetter("score"), reverse=True)
