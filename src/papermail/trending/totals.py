"""Each source's numbers for a page of ranked papers: the per-metric totals behind the evidence line.

The JSON feed and ``papermail trending --json`` carry them, so every number the ranking used can be
checked: ``{"github_stars": 340, "hn_points": 250, "bluesky_likes": 57}``. A counter is read as its
running maximum up to the run's ``as_of``, as the formula reads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail.db.models import SignalSnapshot
from papermail.trending.params import DISPLAY_ORDER

CHUNK = 500
# The counters shown besides the formula's own: context for a reader, never scored.
SHOWN_ONLY = ("bluesky_quotes", "influential_citations")


def metric_totals(
    session: Session, paper_ids: Iterable[int], as_of: datetime, metrics: Sequence[str] = DISPLAY_ORDER
) -> dict[int, dict[str, int]]:
    """``{paper id: {metric: total}}`` of the listed papers, metrics in display order (zeros left out)."""
    wanted = (*metrics, *SHOWN_ONLY)
    order = {metric: n for n, metric in enumerate(wanted)}
    found: dict[int, dict[str, int]] = {}
    ids = sorted(set(paper_ids))
    for start in range(0, len(ids), CHUNK):
        rows = session.execute(
            sa.select(SignalSnapshot.paper_id, SignalSnapshot.metric, sa.func.max(SignalSnapshot.value))
            .where(
                SignalSnapshot.paper_id.in_(ids[start : start + CHUNK]),
                SignalSnapshot.metric.in_(wanted),
                SignalSnapshot.observed_at <= as_of,
            )
            .group_by(SignalSnapshot.paper_id, SignalSnapshot.metric)
        )
        for paper_id, metric, total in rows:
            if total > 0:
                found.setdefault(paper_id, {})[metric] = total
    return {
        paper_id: dict(sorted(totals.items(), key=lambda item: order[item[0]]))
        for paper_id, totals in found.items()
    }
