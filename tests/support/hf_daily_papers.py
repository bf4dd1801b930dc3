"""A stand-in for Hugging Face's ``/api/daily_papers`` whose counters grow as the (frozen) clock moves.

It honours ``date=YYYY-MM-DD``, ``week=YYYY-Www``, ``limit`` (at most 100) and the 0-based page
``p``, answers in the 2026 schema of the recorded fixture (``paper.upvotes``, top-level
``numComments``, ``paper.githubStars``), sends an ETag and answers 304 to a matching
If-None-Match. Without ``date`` or ``week`` it lists the newest featured day, as the real one does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from papermail import clock
from tests.support.feeds import Reply, Request

MAX_LIMIT = 100
Growth = Callable[[float], int]  # hours since featured -> counter value


def ramp(*points: tuple[float, int]) -> Growth:
    """A counter through (hours since featured, value) points, linear between them, flat after."""

    def value(hours: float) -> int:
        if hours < 0:
            return 0
        before = (0.0, 0)
        for at, count in points:
            if hours <= at:
                span = at - before[0]
                share = (hours - before[0]) / span if span else 1.0
                return int(before[1] + share * (count - before[1]))
            before = (at, count)
        return before[1]

    return value


@dataclass
class FeaturedPaper:
    """A paper on Hugging Face's daily list of ``featured_at``, with counters that grow."""

    arxiv_id: str
    title: str
    featured_at: datetime
    published_at: datetime
    upvotes: Growth
    stars: Growth | None = None
    comments: Growth = field(default=lambda _hours: 0)

    def item(self, now: datetime) -> dict:
        hours = (now - self.featured_at) / timedelta(hours=1)
        paper = {
            "id": self.arxiv_id,
            "title": self.title,
            "summary": f"We study {self.title.lower()}.",
            "authors": [{"name": "A. Author", "hidden": False}],
            "publishedAt": self.published_at.isoformat().replace("+00:00", "Z"),
            "submittedOnDailyAt": self.featured_at.isoformat().replace("+00:00", "Z"),
            "upvotes": self.upvotes(hours),
        }
        if self.stars is not None:
            paper["githubRepo"] = f"https://github.com/example/{self.arxiv_id.replace('.', '-')}"
            paper["githubStars"] = self.stars(hours)
        return {"paper": paper, "title": self.title, "numComments": self.comments(hours)}


class DailyPapers:
    """The responder: route it at ``/api/daily_papers`` on a ``FeedServer``."""

    def __init__(self, papers: list[FeaturedPaper]) -> None:
        self.papers = papers

    def __call__(self, request: Request) -> Reply:
        query, now = request.query, clock.now()
        limit = min(int(query.get("limit", "50")), MAX_LIMIT)
        page = int(query.get("p", "0"))
        listed = [p for p in self.papers if p.featured_at <= now]
        if "date" in query:
            day = date.fromisoformat(query["date"])
            listed = [p for p in listed if p.featured_at.date() == day]
        elif "week" in query:
            year, week = (int(part) for part in query["week"].split("-W"))
            listed = [p for p in listed if p.featured_at.isocalendar()[:2] == (year, week)]
        elif listed:
            newest = max(p.featured_at.date() for p in listed)
            listed = [p for p in listed if p.featured_at.date() == newest]
        listed.sort(key=lambda p: (p.featured_at, p.arxiv_id), reverse=True)
        body = json.dumps([p.item(now) for p in listed[page * limit : (page + 1) * limit]]).encode()
        etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
        if request.headers.get("if-none-match") == etag:
            return Reply(304, headers={"ETag": etag})
        return Reply(200, body, {"Content-Type": "application/json", "ETag": etag})
