"""Trending: the published trendiness score, computed in bulk as ranked scoring runs.

:mod:`.score` is the formula (pure, no I/O; its parameters in :mod:`.params`, the series it reads in
:mod:`.series`, its "why" line in :mod:`.evidence`); :mod:`.runs` runs it over the database and
reads the rankings back. Other features use the names below.
"""

from papermail.trending.params import TrendParams
from papermail.trending.runs import (
    RankedPaper,
    RunSummary,
    in_topics,
    latest_run,
    ranked_papers,
    score_papers,
    score_windows,
    select_ranked,
)
from papermail.trending.windows import DAILY, DEFAULT_WINDOW, WEEKLY, WINDOWS, window_for

__all__ = [
    "DAILY",
    "DEFAULT_WINDOW",
    "WEEKLY",
    "WINDOWS",
    "RankedPaper",
    "RunSummary",
    "TrendParams",
    "in_topics",
    "latest_run",
    "ranked_papers",
    "score_papers",
    "score_windows",
    "select_ranked",
    "window_for",
]
