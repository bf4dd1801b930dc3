"""Who reads which window: the home page and weekly digests the 7-day run, daily digests the 24-hour run."""

from __future__ import annotations

import sqlalchemy as sa

from papermail.db.models import Delivery, Digest, Frequency
from papermail.delivery.plan import plan
from papermail.trending import score_windows
from papermail.web.preview import top_trending
from tests.support.trending import NOW, Corpus, add_reader


def two_rankings(corpus: Corpus) -> tuple[int, int]:
    """Steady gained 200 over the week but little today; Burst gained 30, all today. Their ids."""
    steady = corpus.paper("2611.00001", age_hours=6 * 24, title="Steady")
    corpus.observe(steady, "upvotes", (6 * 24, 0), (30, 195), (2, 200))
    burst = corpus.paper("2611.00002", age_hours=30, title="Burst")
    corpus.observe(burst, "upvotes", (26, 0), (1, 30))
    return steady.id, burst.id


def test_the_home_page_shows_the_weekly_ranking(session, corpus, committed_settings):
    two_rankings(corpus)
    score_windows(session, committed_settings)
    shown = top_trending(session)
    assert [(p.title, p.evidence) for p in shown] == [
        ("Steady", "+200 upvotes this week · 6 days old"),
        ("Burst", "+30 upvotes this week · 1 day old"),
    ]


def test_each_digest_pins_the_run_of_its_own_window(session, corpus, committed_settings):
    steady_id, burst_id = two_rankings(corpus)
    runs = {s.window: s.run_id for s in score_windows(session, committed_settings)}
    for email, frequency in (("w@example.org", Frequency.WEEKLY), ("d@example.org", Frequency.DAILY)):
        add_reader(session, email, frequency, since=NOW.replace(month=10), topics=["cs.LG"])
    session.flush()
    assert plan(session, committed_settings, now=NOW)
    pinned = dict(session.execute(sa.select(Digest.period_key, Digest.scoring_run_id)).all())
    assert pinned == {"2026-W49": runs["7d"], "2026-11-30": runs["24h"]}
    papers = dict(session.execute(sa.select(Delivery.period_key, Delivery.paper_ids)).all())
    assert papers["2026-W49"] == [steady_id, burst_id]
    assert papers["2026-11-30"] == [burst_id, steady_id]  # the daily digest ranks by the last day
