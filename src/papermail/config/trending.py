"""Trending settings: the trendiness formula's parameters, explained in docs/trending.md."""

from __future__ import annotations

from dataclasses import dataclass

from papermail.config import parsers as parse
from papermail.config.reader import ConfigError, Reader


@dataclass(frozen=True, repr=False)
class TrendSettings:
    """How fast attention fades, how much each signal weighs, and how many scoring runs are kept."""

    trend_half_life_hours: float
    trend_volume_weight: float
    trend_weight_upvotes: float
    trend_weight_github_stars: float
    trend_weight_comments: float
    trend_weight_hn_points: float
    trend_weight_hn_comments: float
    trend_weight_bluesky_likes: float
    trend_weight_bluesky_reposts: float
    trend_weight_citations: float
    trend_max_age_days: float
    trend_keep_runs: int


def read_trending(read: Reader) -> dict[str, object]:
    """The trending settings; the defaults and their reasons are in docs/trending.md."""
    if read.raw("TREND_WINDOW_HOURS", listed=False):
        # A silent no-op would mislead: each digest now ranks over its own period.
        raise ConfigError(
            "TREND_WINDOW_HOURS", "was removed: daily digests rank by 24 hours, weekly ones by 7 days"
        )
    return {
        "trend_half_life_hours": read.get("TREND_HALF_LIFE_HOURS", parse.positive_float, "36"),
        "trend_volume_weight": read.get("TREND_VOLUME_WEIGHT", parse.fraction, "0.5"),
        "trend_weight_upvotes": read.get("TREND_WEIGHT_UPVOTES", parse.weight, "1"),
        "trend_weight_github_stars": read.get("TREND_WEIGHT_GITHUB_STARS", parse.weight, "0.5"),
        "trend_weight_comments": read.get("TREND_WEIGHT_COMMENTS", parse.weight, "0.5"),
        "trend_weight_hn_points": read.get("TREND_WEIGHT_HN_POINTS", parse.weight, "0.5"),
        "trend_weight_hn_comments": read.get("TREND_WEIGHT_HN_COMMENTS", parse.weight, "0.25"),
        "trend_weight_bluesky_likes": read.get("TREND_WEIGHT_BLUESKY_LIKES", parse.weight, "0.4"),
        "trend_weight_bluesky_reposts": read.get("TREND_WEIGHT_BLUESKY_REPOSTS", parse.weight, "0.4"),
        "trend_weight_citations": read.get("TREND_WEIGHT_CITATIONS", parse.weight, "0.5"),
        "trend_max_age_days": read.get("TREND_MAX_AGE_DAYS", parse.positive_float, "30"),
        "trend_keep_runs": read.get("TREND_KEEP_RUNS", parse.positive_int, "24"),
    }
