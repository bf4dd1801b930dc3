"""Personal relevance on the offline demo's real papers and trending history."""

from __future__ import annotations

import sqlalchemy as sa

from papermail import clock, votes
from papermail.db.models import Paper
from papermail.demo import load_demo
from papermail.digest.select import select_for_subscribers


def _paper(session, title_start: str) -> Paper:
    return session.scalars(sa.select(Paper).where(Paper.title.startswith(title_start))).one()


def test_one_like_leaves_the_weeks_hit_in_the_digest(session, settings, world):
    run_id = load_demo(session, settings, now=clock.now(), actor="test").run_id
    reader = world.subscriber(topics=["cs.LG", "stat.ML"], keywords=["sparse attention"])
    assert reader.relevance_mix == 2  # the default
    hit = _paper(session, "MiniMax Sparse Attention")
    trending = select_for_subscribers(session, run_id, [reader], size=settings.digest_size)[reader.id]
    assert trending.paper_ids[0] == hit.id  # the week's #1 for this reader, by its keyword
    liked = _paper(session, "Performance Anomaly Detection in Athletics: A Benchmarking System")
    votes.record_vote(session, reader.id, liked.arxiv_id, votes.MORE, votes.FROM_DIGEST)

    chosen = select_for_subscribers(session, run_id, [reader], size=settings.digest_size)[reader.id]
    # Still first: one like is too little evidence to overturn a clear trending lead.
    assert chosen.paper_ids[0] == hit.id
