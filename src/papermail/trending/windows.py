"""Velocity windows: each digest is ranked by growth over its own period (docs/trending.md).

A weekly digest ranks by the 7 days before its send time, a daily one by the last 24 hours. Every
scoring pass writes one run per window, and a digest pins the run of its own window.
"""

from __future__ import annotations

from datetime import timedelta
from types import MappingProxyType

DAILY, WEEKLY = "24h", "7d"
WINDOWS = MappingProxyType({DAILY: timedelta(hours=24), WEEKLY: timedelta(days=7)})
DEFAULT_WINDOW = WEEKLY  # the product is "the week's trending papers"
# How the evidence line names each window's growth: "+266 upvotes this week".
PERIOD_PHRASES = MappingProxyType({DAILY: "today", WEEKLY: "this week"})
# Subscriber.frequency values (papermail.db.models.Frequency) and the window each digest uses.
_FREQUENCY_WINDOWS = MappingProxyType({"daily": DAILY, "weekly": WEEKLY})


def window_hours(window: str) -> float:
    """The window's length in hours; ValueError naming the known windows for any other name."""
    if window not in WINDOWS:
        raise ValueError(f"unknown window {window!r}; expected one of {', '.join(WINDOWS)}")
    return WINDOWS[window] / timedelta(hours=1)


def window_for(frequency: str) -> str:
    """The window a digest of this frequency ("daily", "weekly") is ranked over."""
    return _FREQUENCY_WINDOWS[str(frequency)]


def window_named(hours: float) -> str:
    """A window's name: "24h", "1.5h" or, for whole days from two on, "7d"."""
    if hours >= 48 and hours % 24 == 0:
        return f"{hours / 24:g}d"
    return f"{hours:g}h"
