"""Personal relevance on the offline demo's real papers and trending history."""

from __future__ import annotations

import sqlalchemy as sa

from papermail import clock
from papermail.db.models import Paper
from papermail.demo import load_demo
from papermail.digest.select import select_for_subscribers
from papermail.subscribers import votes


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


def test_five_likes_on_one_theme_bring_the_rest_of_it_into_the_top_ten(session, settings, world):
    """The demo's software-engineering papers (recorded arXiv answers) hold eight on metamorphic
    testing: a reader at mix 4 who likes five of them gets the other three in their top 10."""
    run_id = load_demo(session, settings, now=clock.now(), actor="test").run_id
    theme = session.scalars(
        sa.select(Paper).where(Paper.title.ilike("%metamorphic%")).order_by(Paper.arxiv_id)
    ).all()
    assert len(theme) == 8 and all("cs.SE" in paper.categories for paper in theme)
    reader = world.subscriber(topics=["cs.SE"])
    reader.relevance_mix = 4
    for paper in theme[:5]:
        votes.record_vote(session, reader.id, paper.arxiv_id, votes.MORE, votes.FROM_SEED)
    trending = select_for_subscribers(session, run_id, [world.subscriber(topics=["cs.SE"])], size=10)
    assert len(set(next(iter(trending.values())).paper_ids) & {p.id for p in theme[5:]}) < 3

    chosen = select_for_subscribers(session, run_id, [reader], size=10)[reader.id]
    assert {p.id for p in theme[5:]} <= set(chosen.paper_ids)
