"""Choosing papers: topics with cross-lists, whole-word keywords, top N, no repeats, skip reasons."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from papermail.db.models import DeliveryStatus, Frequency
from papermail.digest import select
from papermail.digest.select import Interests, Selection, select_for_subscribers


def chosen(session, run, *subscribers, size=10) -> list[list[int]] | list[int]:
    selections = select_for_subscribers(session, run.id, subscribers, size=size)
    ids = [selections[s.id].paper_ids for s in subscribers]
    return ids[0] if len(ids) == 1 else ids


def test_topics_match_primary_and_cross_listed_categories_in_rank_order(session, world):
    robotics = world.paper(categories=["cs.RO"])
    vision = world.paper(categories=["cs.CV"])
    cross_listed = world.paper(categories=["cs.CV", "cs.RO"])
    language = world.paper(categories=["cs.CL"])
    run = world.run([cross_listed, language, vision, robotics])
    assert chosen(session, run, world.subscriber(topics=["cs.RO"])) == [cross_listed.id, robotics.id]
    assert chosen(session, run, world.subscriber(topics=["cs.CL", "cs.CV"])) == [
        cross_listed.id,
        language.id,
        vision.id,
    ]


def test_top_n_by_rank(session, world):
    papers = world.papers(15)
    run = world.run(list(reversed(papers)))
    assert chosen(session, run, world.subscriber(), size=10) == [p.id for p in reversed(papers)][:10]
    assert len(chosen(session, run, world.subscriber(), size=3)) == 3


@pytest.mark.parametrize(
    ("keyword", "title", "abstract", "matches"),
    [
        ("diffusion", "Latent Diffusion-based editing", "", True),
        ("Diffusion", "", "we study DIFFUSION models.", True),
        ("diffusion", "Diffusions everywhere", "nondiffusion", False),
        ("transformer", "Transformers are graphs", "", False),
        ("large language model", "", "a large\n  language model agent", True),
        ("c++", "Fast C++ kernels", "", True),
        ("c++", "C+ is not C", "", False),
        ("RL", "Curling robots", "", False),
        ("RL", "Offline RL, revisited", "", True),
        ("state-space", "", "State-space models (SSMs)", True),
    ],
)
def test_keywords_match_whole_words_in_title_or_abstract_in_any_case(
    session, world, keyword, title, abstract, matches
):
    paper = world.paper(title=title, abstract=abstract, categories=["math.PR"])
    run = world.run([paper])
    reader = world.subscriber(topics=[], keywords=[keyword])
    assert chosen(session, run, reader) == ([paper.id] if matches else [])


def test_topic_or_keyword_either_qualifies(session, world):
    on_topic = world.paper(categories=["cs.RO"], title="Legged locomotion")
    by_keyword = world.paper(categories=["cs.CV"], title="SLAM in the dark")
    neither = world.paper(categories=["cs.CV"], title="Image captioning", abstract="Captions.")
    run = world.run([neither, by_keyword, on_topic])
    reader = world.subscriber(topics=["cs.RO"], keywords=["slam"])
    assert chosen(session, run, reader) == [by_keyword.id, on_topic.id]


def test_papers_from_earlier_deliveries_are_never_repeated(session, world):
    first, second, third = world.papers(3)
    reader, other = world.subscriber(), world.subscriber()
    old_run = world.run([first, second])
    world.delivery(reader, world.digest("2026-W47", old_run), [first], status=DeliveryStatus.SENT)
    world.delivery(reader, world.digest("2026-W46", old_run), [second], status=DeliveryStatus.FAILED)
    # A new version and a cross-list update the same row: it stays the paper already sent.
    first.version, first.categories = 2, ["cs.LG", "stat.ML"]
    session.flush()
    run = world.run([first, second, third])
    assert chosen(session, run, reader, other) == [[third.id], [first.id, second.id, third.id]]


def test_an_empty_selection_says_why_in_words(session, world):
    papers = world.papers(2, categories=["cs.LG"])
    run = world.run(papers)
    robotics = world.subscriber(topics=["cs.RO"])
    daily = world.subscriber(topics=["cs.RO", "cs.SY"], keywords=["SLAM"], frequency=Frequency.DAILY)
    seen_it_all = world.subscriber(topics=["cs.LG"])
    world.delivery(seen_it_all, world.digest("2026-W47", run), papers, status=DeliveryStatus.SENT)
    selections = select_for_subscribers(session, run.id, [robotics, daily, seen_it_all], size=10)
    assert selections[robotics.id] == Selection([], "no new papers in cs.RO this week")
    assert (
        selections[daily.id].skip_reason
        == "no new papers in cs.RO or cs.SY or matching \u201cSLAM\u201d today"
    )
    assert selections[seen_it_all.id].skip_reason == (
        "no new papers in cs.LG this week (all 2 trending papers were in earlier digests)"
    )


def test_selection_has_papers_or_a_reason():
    with pytest.raises(ValueError):
        Selection([], None)
    with pytest.raises(ValueError):
        Selection([1], "no new papers")


def test_subscribers_with_the_same_interests_share_the_work(session, world, monkeypatch):
    ranking = world.papers(40, categories=["cs.LG"]) + world.papers(40, categories=["cs.CV"])
    run = world.run(ranking)
    learners = [world.subscriber(topics=["cs.LG"]) for _ in range(25)]
    seers = [world.subscriber(topics=["cs.CV"], keywords=["Vision", "vision"]) for _ in range(25)]
    world.delivery(learners[0], world.digest("2026-W47", run), ranking[:5], status=DeliveryStatus.SENT)
    checks = []
    real_matches = Interests.matches
    monkeypatch.setattr(
        Interests, "matches", lambda self, paper: checks.append(1) or real_matches(self, paper)
    )
    statements = []
    engine = session.get_bind()
    record = lambda *args: statements.append(args[2])  # noqa: E731
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        selections = select_for_subscribers(session, run.id, learners + seers, size=10)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    # Two groups: the ranking is scanned at most once per group, and the queries don't grow with people
    # (the ranking, the papers already received, and the votes, which nobody here has given).
    assert len(checks) <= 2 * len(ranking)
    assert len(statements) == 3
    assert selections[learners[0].id].paper_ids == [p.id for p in ranking[5:15]]
    assert {tuple(selections[s.id].paper_ids) for s in learners[1:]} == {tuple(p.id for p in ranking[:10])}
    assert all(len(selections[s.id].paper_ids) == 10 for s in seers)


def test_interests_ignore_keyword_case_and_order():
    assert Interests.of(["cs.LG", "cs.CL"], ["SLAM", "Diffusion"]) == Interests.of(
        ["cs.CL", "cs.LG"], ["diffusion", "slam"]
    )
    assert select.describe_interests(["cs.AI", "cs.CL", "cs.LG"], []) == "in cs.AI, cs.CL or cs.LG"


def test_no_subscribers_no_queries(session):
    assert select_for_subscribers(session, 1, [], size=10) == {}


def test_matches_merged_from_topics_and_keywords_equal_the_scan(session, world):
    from papermail.digest.select import RunSelection, _Matches, load_ranking

    categories = ["cs.LG", "cs.CV", "cs.RO", "stat.ML"]
    papers = [world.paper(categories=sorted({categories[n % 4], categories[n * 7 % 3]})) for n in range(40)]
    run = world.run(papers)
    ranking = load_ranking(session, run.id, with_text=True)
    selection = RunSelection(run.id)
    for topics, keywords in [
        (["cs.LG"], []),
        (["cs.RO", "cs.LG"], []),
        (["stat.ML", "cs.CV", "cs.RO"], []),
        (["math.AG"], []),
        (["cs.CV"], ["diffusion"]),
        (["cs.RO", "stat.ML"], ["model", "language"]),
        ([], ["model"]),
        ([], []),
    ]:
        interests = Interests.of(topics, keywords)
        merged, scanned = selection.matches(session, interests), _Matches.scan(ranking, interests)
        assert ids(merged.first(7)) == ids(scanned.first(7))
        assert ids(merged) == ids(scanned)


def ids(papers) -> list[int]:
    return [paper.paper_id for paper in papers]
