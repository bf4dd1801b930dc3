"""Looking papers up on the arXiv API by id: the seeds and votes readers name before papermail has them.

The calls go through the fetchers' own client (:class:`~papermail.sources.http.HttpClient`), arXiv
API code and deployment-wide pace (:mod:`papermail.sources.api_pacing`), and the answers are stored
as any fetch stores them (:func:`~papermail.sources.ingest.upsert_papers`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail import clock
from papermail.config import Settings
from papermail.db.models import Paper, Vote
from papermail.sources.api_pacing import arxiv_pacer_for
from papermail.sources.arxiv_api import ArxivApi
from papermail.sources.http import HttpClient
from papermail.sources.ingest import upsert_papers

# Seed ids not on papermail yet that one look-up task asks arXiv for, whoever named them.
LOOK_UP_BATCH = 200


def unknown_papers(session: Session, arxiv_ids: Sequence[str]) -> list[str]:
    """The ids papermail has no paper row for yet, in the given order."""
    known = (
        set(session.scalars(sa.select(Paper.arxiv_id).where(Paper.arxiv_id.in_(arxiv_ids))))
        if arxiv_ids
        else set()
    )
    return [arxiv_id for arxiv_id in arxiv_ids if arxiv_id not in known]


def look_up_papers(
    session: Session, settings: Settings, arxiv_ids: Sequence[str], *, http: HttpClient | None = None
) -> dict[str, str]:
    """Fetch papers papermail doesn't have from the arXiv API (paced) and store them.

    Seeds other readers named that are still unknown go in the same batched ``id_list`` calls, so
    a burst of look-up tasks makes one or two calls, not one each. Returns the asked-for ids that
    could not be had, each with the reason in a few words.
    """
    asked = unknown_papers(session, list(arxiv_ids))
    if not asked:
        return {}
    wanted = list(dict.fromkeys([*asked, *unknown_voted_papers(session, LOOK_UP_BATCH)]))
    client = http or HttpClient.from_settings(settings)
    api = ArxivApi(client, settings.arxiv_api_url, arxiv_pacer_for(settings))
    found: set[str] = set()
    failure = None
    try:
        # A couple of paced calls at most, so the transaction waits on the network only briefly.
        for page in api.lookup(wanted):
            upsert_papers(session, page.records, now=clock.now())
            found.update(record.arxiv_id for record in page.records)
            failure = next((p.reason for p in page.problems if p.kind == "feed"), failure)
    finally:
        if http is None:
            client.close()
    return {arxiv_id: failure or "not on arXiv" for arxiv_id in asked if arxiv_id not in found}


def unknown_voted_papers(session: Session, limit: int) -> list[str]:
    """Ids some reader voted on or seeded that papermail has no paper row for, oldest first."""
    missing = ~sa.exists().where(Paper.arxiv_id == Vote.arxiv_id)
    query = sa.select(Vote.arxiv_id).where(missing).group_by(Vote.arxiv_id).order_by(sa.func.min(Vote.id))
    return list(session.scalars(query.limit(limit)))
