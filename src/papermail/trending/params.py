"""The formula's parameters: the window, the half-life, the volume weight and each metric's weight."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from papermail.trending.windows import window_hours, window_named

if TYPE_CHECKING:
    from papermail.config import Settings

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
# The weights' settings, by metric (PAPERMAIL_TREND_WEIGHT_<METRIC>; docs/trending.md gives reasons).
WEIGHT_SETTINGS = {metric: f"trend_weight_{metric}" for metric in DISPLAY_ORDER}


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
