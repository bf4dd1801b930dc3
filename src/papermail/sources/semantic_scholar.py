"""Semantic Scholar: citations and the machine-written TL;DR of recent papers, in batches.

``POST /graph/v1/paper/batch`` with up to 500 ``ARXIV:<id>`` a call, paced at one request a second
(the limit of the shared pool; ``PAPERMAIL_S2_API_KEY`` gives a key of one's own). The answer is a
list in the order asked, ``null`` for a paper Semantic Scholar does not know (yet): normal for a
paper announced this week. Papers up to 60 days old are asked, newest first, within the budget.
"""

from __future__ import annotations

import json
from datetime import timedelta

import sqlalchemy as sa

from papermail import clock
from papermail.config import Settings
from papermail.db.models import Paper
from papermail.sources.arxiv_api import Pacer
from papermail.sources.job import Job
from papermail.sources.records import ParsedFeed, Problem, SignalRecord, is_count

SOURCE, CITATIONS, INFLUENTIAL = "semanticscholar", "citations", "influential_citations"
BATCH_SIZE = 500  # the most one call takes
TRACK_FOR = timedelta(days=60)
FIELDS = "externalIds,citationCount,influentialCitationCount,tldr"
INTERVAL_SECONDS = 1.0
MAX_TLDR_LENGTH = 1000


def papers_to_ask(session: sa.orm.Session) -> list[str]:
    """The arXiv ids of the papers up to 60 days old, newest first."""
    now = clock.now()
    query = sa.select(Paper.arxiv_id).where(Paper.born_at >= now - TRACK_FOR, Paper.born_at <= now)
    return list(session.scalars(query.order_by(Paper.born_at.desc(), Paper.arxiv_id)))


def parse_batch(content: bytes, url: str, arxiv_ids: list[str]) -> tuple[ParsedFeed, dict[str, str]]:
    """Citation signals and TL;DR texts of one batch answer (a list in the order of ``arxiv_ids``)."""
    try:
        papers = json.loads(content)
    except (ValueError, RecursionError) as exc:
        return ParsedFeed(problems=[Problem.feed(url, f"not JSON: {exc}")]), {}
    if not isinstance(papers, list) or len(papers) != len(arxiv_ids):
        reason = f"expected a list of {len(arxiv_ids)} papers, got {type(papers).__name__}"
        return ParsedFeed(problems=[Problem.feed(url, reason)]), {}
    parsed, tldrs = ParsedFeed(entries_seen=len(papers)), {}
    for arxiv_id, paper in zip(arxiv_ids, papers, strict=True):
        if not isinstance(paper, dict):
            continue  # null: not known to Semantic Scholar (yet)
        for metric, key in ((CITATIONS, "citationCount"), (INFLUENTIAL, "influentialCitationCount")):
            value = paper.get(key)
            if is_count(value):
                parsed.signals.append(SignalRecord(arxiv_id, metric, value))
        tldr = paper.get("tldr")
        text = tldr.get("text") if isinstance(tldr, dict) else None
        if isinstance(text, str) and text.strip():
            tldrs[arxiv_id] = " ".join(text.split())[:MAX_TLDR_LENGTH]
    return parsed, tldrs


def store_tldrs(session: sa.orm.Session, tldrs: dict[str, str]) -> None:
    """Write the TL;DR texts that changed."""
    for arxiv_id, text in tldrs.items():
        session.execute(
            sa.update(Paper)
            .where(Paper.arxiv_id == arxiv_id, Paper.tldr.is_distinct_from(text))
            .values(tldr=text)
        )


def fetch(job: Job, settings: Settings) -> None:
    """Ask for the recent papers' citations and TL;DRs, a batch a second, within the budget."""
    arxiv_ids = papers_to_ask(job.session)
    job.session.commit()
    url = f"{settings.s2_api_url}/graph/v1/paper/batch"
    headers = {"x-api-key": settings.s2_api_key} if settings.s2_api_key else {}
    pacer = Pacer(INTERVAL_SECONDS, sleep=job.http.sleep)
    batches = [arxiv_ids[start : start + BATCH_SIZE] for start in range(0, len(arxiv_ids), BATCH_SIZE)]
    for done, batch in enumerate(batches):
        if job.over_budget(settings.s2_max_requests, url):
            return
        job.report(SOURCE, f"citations of {len(arxiv_ids)} papers", done, len(batches))
        fetched = job.download(
            url,
            {"fields": FIELDS},
            method="POST",
            json={"ids": [f"ARXIV:{arxiv_id}" for arxiv_id in batch]},
            headers=headers,
            before_attempt=pacer.wait,
            conditional=False,
        )
        if fetched is None:
            return  # down, or still rate limited after the retries: the next run asks again
        parsed, tldrs = parse_batch(fetched.content, fetched.url, batch)
        store_tldrs(job.session, tldrs)
        job.store(parsed)
