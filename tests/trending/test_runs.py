"""Scoring runs on SQLite and PostgreSQL: the bulk SQL matches the formula, and runs read back."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from papermail.db.models import Digest, ScoringRun, TrendScore
from papermail.trending import TrendParams, latest_run, ranked_papers, score_papers, score_windows
from papermail.trending.runs import prune_runs
from papermail.trending.score import score_paper
from papermail.trending.series import paper_signals
from papermail.trending.signals import read_window_signals
from tests.support.trending import NOW, Corpus

PARAMS = TrendParams()
WEEKLY = TrendParams(window_hours=7 * 24)
KEEP = 24


def run_now(session, *, keep_runs: int = KEEP):
    return score_papers(session, PARAMS, keep_runs=keep_runs)


def ranking(session, run_id: int) -> list[tuple[str, float, str]]:
    """(arXiv id, score, evidence) of a run, best first."""
    return [(p.paper.arxiv_id, p.score, p.evidence) for p in ranked_papers(session, run_id)]


# -- the SQL computes what the formula's reference computes ----------------------------------------

minutes_ago = st.integers(min_value=0, max_value=40 * 24 * 60)
series = st.dictionaries(minutes_ago, st.integers(0, 100_000), max_size=6)  # unique times per series
paper_data = st.tuples(
    st.integers(min_value=0, max_value=32 * 24 * 3600 * 10**6),  # age in microseconds, past the horizon too
    st.booleans(),  # published, or known only from a listing (then its id's month bounds its age)
    st.dictionaries(st.sampled_from(["upvotes", "github_stars", "comments", "forks"]), series, max_size=4),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(paper_data, max_size=6))
def test_bulk_aggregates_equal_the_reference(session, frozen, papers):
    with rolled_back(session):
        corpus, expected = Corpus(session), {}
        for n, (age_us, published, observations) in enumerate(papers):
            paper = corpus.paper(f"2611.{n:05d}", age_hours=age_us / 3.6e9, published=published)
            for metric, points in observations.items():
                corpus.observe(paper, metric, *((m / 60, v) for m, v in points.items()))
            by_metric = {
                m: [(NOW - timedelta(minutes=t), v) for t, v in pts.items()]
                for m, pts in observations.items()
            }
            born = paper.published_at or paper.id_month
            if born >= NOW - PARAMS.max_age:
                expected[paper.id] = [
                    paper_signals(paper.id, paper.arxiv_id, born, by_metric, NOW, params, age_known=published)
                    for params in (PARAMS, WEEKLY)
                ]
        # One read serves both windows.
        got = {
            daily.paper_id: (daily, weekly)
            for daily, weekly in read_window_signals(session, [PARAMS, WEEKLY], NOW)
        }
        assert got.keys() == expected.keys()
        for paper_id, references in expected.items():
            for bulk, reference, params in zip(got[paper_id], references, (PARAMS, WEEKLY), strict=True):
                assert_same_signals(bulk, reference, params)


def assert_same_signals(bulk, reference, params) -> None:
    """The SQL read equals the formula's reference for one window."""
    # Hours are computed in SQL: equal to the last few bits of a float.
    assert bulk.age_hours == pytest.approx(reference.age_hours, rel=1e-12, abs=1e-12)
    assert [m._replace(first_hours_ago=None) for m in bulk.metrics] == [
        m._replace(first_hours_ago=None) for m in reference.metrics
    ]
    for got_metric, want_metric in zip(bulk.metrics, reference.metrics, strict=True):
        if want_metric.first_hours_ago is None:
            assert got_metric.first_hours_ago is None
        else:
            assert got_metric.first_hours_ago == pytest.approx(want_metric.first_hours_ago, rel=1e-12)
    bulk_scored, reference_scored = score_paper(bulk, params), score_paper(reference, params)
    assert bulk_scored.score == pytest.approx(reference_scored.score, abs=2e-6)
    assert bulk_scored.evidence == reference_scored.evidence


@contextmanager
def rolled_back(session) -> Iterator[None]:
    savepoint = session.begin_nested()
    try:
        yield
    finally:
        savepoint.rollback()


# -- a run ---------------------------------------------------------------------------------------


@pytest.fixture
def four_papers(corpus: Corpus) -> Corpus:
    """Hot, volume-only, brand new and too old; plus one known only from a listing."""
    hot = corpus.paper("2611.00001", age_hours=50, categories=("cs.CL", "cs.LG"), title="Hot")
    corpus.observe(hot, "upvotes", (26, 18), (20, 35), (1, 60))
    corpus.observe(hot, "github_stars", (30, 255), (2, 310))
    volume = corpus.paper("2611.00002", age_hours=9 * 24, categories=("cs.CV",))
    corpus.observe(volume, "upvotes", (200, 150), (150, 400), (3, 400))
    corpus.paper("2611.00003", age_hours=3, categories=("cs.LG",))
    old = corpus.paper("2610.00004", age_hours=31 * 24)
    corpus.observe(old, "upvotes", (1, 5000))
    listed = corpus.paper("2611.00005", age_hours=12, categories=("cs.LGX",), published=False)
    corpus.observe(listed, "upvotes", (1, 3))
    return corpus


def test_a_run_ranks_every_paper_in_the_horizon(session, four_papers):
    summary = run_now(session)
    run = session.get(ScoringRun, summary.run_id)
    assert (run.as_of, run.paper_count, run.params) == (NOW, 4, PARAMS.as_json())
    assert run.finished_at is not None
    assert ranking(session, run.id) == [
        ("2611.00001", 11.976615, "+42 upvotes today · +55★ today · 2 days old"),
        ("2611.00003", -0.083333, "no signals yet · 3 hours old"),
        ("2611.00002", -1.676271, "400 upvotes · 9 days old"),
        # Date unknown: aged from the start of its id's month (Nov 2026), never as new.
        ("2611.00005", -18.420479, "3 upvotes · up to 29 days old"),
    ]
    ranks = session.scalars(sa.select(TrendScore.rank).where(TrendScore.run_id == run.id)).all()
    assert sorted(ranks) == [1, 2, 3, 4]


def test_reading_a_run_by_topic_and_limit(session, four_papers):
    run_id = run_now(session).run_id
    in_lg = ranked_papers(session, run_id, topics=["cs.LG"])
    assert [(p.rank, p.paper.arxiv_id) for p in in_lg] == [(1, "2611.00001"), (2, "2611.00003")]
    several = ranked_papers(session, run_id, topics=["cs.CV", "cs.LGX"], limit=1)
    assert [p.paper.arxiv_id for p in several] == ["2611.00002"]
    assert ranked_papers(session, run_id, topics=["cs.L_"]) == []  # LIKE wildcards are literal
    assert len(ranked_papers(session, run_id, topics=[])) == 4


def test_latest_run_is_the_newest_finished_one_of_its_window(session, four_papers, frozen):
    assert latest_run(session, "24h") is None
    first = run_now(session).run_id
    frozen.tick(timedelta(hours=1))
    second = run_now(session).run_id
    assert latest_run(session, "24h").id == second != first
    assert latest_run(session, "7d") is None  # a 24-hour run never stands in for a weekly one
    session.add(ScoringRun(as_of=NOW + timedelta(days=1), window="24h", params={}))  # unfinished
    session.flush()
    assert latest_run(session, "24h").id == second


def test_every_window_is_scored_as_of_one_time(session, four_papers, committed_settings):
    summaries = score_windows(session, committed_settings)
    assert [(s.window, s.as_of, s.paper_count) for s in summaries] == [("24h", NOW, 4), ("7d", NOW, 4)]
    weekly = latest_run(session, "7d")
    assert (weekly.id, weekly.params["window_hours"]) == (summaries[1].run_id, 168)
    # Over the week the hot paper gained all 60 upvotes and 310 stars it has, not just the last day's.
    assert ranking(session, weekly.id)[0] == (
        "2611.00001",
        13.717795,
        "+60 upvotes this week · +310★ this week · 2 days old",
    )


def test_runs_are_pruned_per_window(session, four_papers, frozen, committed_settings):
    for _ in range(3):
        score_windows(session, committed_settings)
        frozen.tick(timedelta(minutes=10))
    assert prune_runs(session, keep_runs=1) == 4
    assert sorted(session.scalars(sa.select(ScoringRun.window))) == ["24h", "7d"]


def test_old_runs_are_pruned_unless_a_digest_pinned_them(session, four_papers, frozen):
    run_ids = []
    for _ in range(4):
        run_ids.append(run_now(session, keep_runs=100).run_id)
        frozen.tick(timedelta(minutes=10))
    session.add(Digest(period_key="2026-W49", scoring_run_id=run_ids[0], created_at=NOW))
    session.flush()
    assert prune_runs(session, keep_runs=2) == 1  # run 2; run 1 is pinned, runs 3 and 4 are newest
    left = session.scalars(sa.select(ScoringRun.id).order_by(ScoringRun.id)).all()
    assert left == [run_ids[0], run_ids[2], run_ids[3]]
    assert session.scalar(sa.select(sa.func.count()).where(TrendScore.run_id == run_ids[1])) == 0
    assert run_now(session, keep_runs=1).pruned_runs == 2


def test_rescoring_later_without_new_signals_never_raises_a_score(session, four_papers, frozen):
    before = {a: s for a, s, _ in ranking(session, run_now(session).run_id)}
    for hours in (1, 6, 30):
        frozen.tick(timedelta(hours=hours))
        after = {a: s for a, s, _ in ranking(session, run_now(session).run_id)}
        assert all(after[a] <= before[a] for a in after)
        before = after


def test_the_same_data_ranks_the_same_way_with_ties_by_arxiv_id(session, corpus):
    ids = [f"2611.{n:05d}" for n in range(12)]
    random.Random(7).shuffle(ids)
    for arxiv_id in ids:  # inserted in random order, with identical signals
        paper = corpus.paper(arxiv_id, age_hours=5)
        corpus.observe(paper, "upvotes", (4, 1), (1, 9))
    first = ranking(session, run_now(session).run_id)
    assert [a for a, _, _ in first] == sorted(ids)
    assert ranking(session, run_now(session).run_id) == first


def test_a_run_is_a_fixed_number_of_statements_whatever_the_paper_count(session, corpus):
    def statements_for_a_run() -> int:
        executed = []
        listener = lambda *args: executed.append(args[2])  # noqa: E731
        engine = session.get_bind().engine
        sa.event.listen(engine, "before_cursor_execute", listener)
        try:
            run_now(session)
        finally:
            sa.event.remove(engine, "before_cursor_execute", listener)
        return len(executed)

    def add_papers(start: int, count: int) -> None:
        for n in range(start, start + count):
            paper = corpus.paper(f"2611.{n:05d}", age_hours=n % 40)
            corpus.observe(paper, "upvotes", (30, n), (2, 2 * n))
            corpus.observe(paper, "comments", (3, 1))

    add_papers(0, 3)
    few = statements_for_a_run()
    add_papers(3, 60)
    assert statements_for_a_run() == few


def test_an_empty_database_gives_an_empty_run(session, frozen):
    summary = run_now(session)
    assert summary.paper_count == 0
    assert ranked_papers(session, summary.run_id) == []
