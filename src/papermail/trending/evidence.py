"""The evidence line: "+340★ this week · 250 points on Hacker News · 57 likes on Bluesky · 4 days old".

It names the metrics that added most to a paper's score, worded for a reader, then the paper's age.
"""

from __future__ import annotations

from functools import cache
from operator import itemgetter

from papermail.arxiv_ids import id_month_end, id_month_start
from papermail.trending.series import HOUR
from papermail.trending.windows import PERIOD_PHRASES, window_named

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


def evidence_line(parts: list[tuple[float, str, int, float]], per: str, age: str) -> str:
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
        return no_signals_yet(age)
    shown.append(age)
    return " · ".join(shown)


def no_signals_yet(age: str) -> str:
    """The line of a paper with nothing to show: "no signals yet · 3 hours old"."""
    return f"no signals yet · {age}"


_ADDED = itemgetter(0)  # what a metric added to the score


@cache
def per_window(window_hours: float) -> str:
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
