"""Storing records (SQLite and PostgreSQL): one paper per id, versions, merging, signals, the run lock."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from papermail import clock
from papermail.db.bookkeeping import FetchProblem, FetchRun
from papermail.db.models import FetchStatus, Paper, SignalSnapshot
from papermail.sources.arxiv_api import parse_api_feed
from papermail.sources.fetch_runs import (
    STALE_RUN_AFTER,
    FetchAlreadyRunning,
    latest_run_per_source,
    recent_runs,
    start_run,
)
from papermail.sources.huggingface import SOURCE as HF
from papermail.sources.ingest import append_signals, upsert_papers
from papermail.sources.records import PaperRecord, SignalRecord

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


def _papers(session) -> dict[str, Paper]:
    session.expire_all()
    return {paper.arxiv_id: paper for paper in session.scalars(sa.select(Paper))}


def _record(**overrides) -> PaperRecord:
    values = {
        "arxiv_id": "2611.00001",
        "version": 1,
        "title": "A paper",
        "abstract": "An abstract.",
        "authors": ("A. Author",),
        "primary_category": "cs.LG",
        "categories": ("cs.LG",),
        "published_at": NOW - timedelta(days=1),
    }
    values.update(overrides)
    return PaperRecord(**values)


@pytest.fixture(scope="module")
def testing_pages(api_fixtures):
    """The ten overlapping pages of the recorded "testing" search (115 entries, 60 papers)."""
    paths = sorted(path for path in api_fixtures.glob("q_testing_*.xml") if "_m100_" not in path.name)
    return [parse_api_feed(path.read_bytes()) for path in paths]


def test_overlapping_api_pages_become_one_paper_per_id(session, testing_pages):
    records = [record for page in testing_pages for record in page.records]
    assert len(records) == 115
    result = upsert_papers(session, records, now=NOW)
    papers = _papers(session)
    assert len(papers) == 60 == len(result.new) and result.updated == []
    highest = {}
    for record in records:
        highest[record.arxiv_id] = max(highest.get(record.arxiv_id, 0), record.version)
    assert {i: p.version for i, p in papers.items()} == highest
    assert all(p.first_seen_at == NOW and p.categories[0] == p.primary_category for p in papers.values())


def test_ingesting_the_same_pages_again_changes_nothing(session, testing_pages):
    records = [record for page in testing_pages for record in page.records]
    upsert_papers(session, records, now=NOW)
    again = upsert_papers(session, records, now=NOW + timedelta(hours=1))
    assert again.new == [] and again.updated == []
    papers = _papers(session)
    assert all(p.first_seen_at == NOW and p.last_seen_at == NOW + timedelta(hours=1) for p in papers.values())


def test_a_newer_version_updates_and_an_older_one_does_not(session):
    upsert_papers(session, [_record(version=2, title="Second")], now=NOW)
    older = upsert_papers(session, [_record(version=1, title="First", abstract="")], now=NOW)
    assert older.updated == []
    newer = upsert_papers(session, [_record(version=3, title="Third", authors=("B", "C"))], now=NOW)
    assert newer.updated == ["2611.00001"]
    paper = _papers(session)["2611.00001"]
    assert (paper.version, paper.title, paper.authors) == (3, "Third", ["B", "C"])


def test_arxiv_metadata_replaces_hugging_faces_copy_whatever_the_order(session):
    from_hf = _record(
        version=None,
        title="HF title",
        abstract="HF summary",
        primary_category=None,
        categories=(),
        github_url="https://github.com/x/y",
        on_huggingface=True,
        from_arxiv=False,
        published_at=NOW - timedelta(days=2),
    )
    from_arxiv = _record(arxiv_id="2611.00002", title="arXiv title", published_at=NOW - timedelta(days=1))
    first = upsert_papers(session, [from_hf, replace(from_arxiv, arxiv_id="2611.00002")], now=NOW)
    assert first.incomplete == ["2611.00001"]  # no categories yet: look it up on arXiv
    upsert_papers(
        session,
        [replace(from_arxiv, arxiv_id="2611.00001"), replace(from_hf, arxiv_id="2611.00002")],
        now=NOW,
    )
    for paper in _papers(session).values():
        assert paper.title == "arXiv title" and paper.abstract == "An abstract."
        assert paper.categories == ["cs.LG"] and paper.version == 1
        assert paper.on_huggingface and paper.github_url == "https://github.com/x/y"
        assert paper.published_at == NOW - timedelta(days=2)  # the earliest known date wins


def test_replacements_and_cross_lists_are_not_new_papers(session):
    result = upsert_papers(
        session,
        [
            _record(arxiv_id="2611.00001"),
            _record(arxiv_id="1605.08386", version=3, announced_new=False, published_at=None),
            _record(arxiv_id="2611.00002", announced_new=False),
        ],
        now=NOW,
    )
    assert result.new == ["2611.00001"]
    assert sorted(result.updated) == ["1605.08386", "2611.00002"]
    assert result.incomplete == ["1605.08386"]  # its first version's date comes from the API


def test_a_batch_with_the_same_paper_twice_merges_it(session):
    result = upsert_papers(
        session, [_record(version=1, title="v1"), _record(version=2, title="v2"), _record(version=1)], now=NOW
    )
    assert result.new == ["2611.00001"]
    assert _papers(session)["2611.00001"].title == "v2"


def _signals(session) -> list[tuple[str, int, datetime]]:
    return [
        (s.metric, s.value, s.observed_at)
        for s in session.scalars(sa.select(SignalSnapshot).order_by(SignalSnapshot.id))
    ]


def test_signals_fetched_twice_in_one_minute_are_counted_once(session):
    ids = upsert_papers(session, [_record()], now=NOW).paper_ids
    signals = [SignalRecord("2611.00001", "upvotes", 5), SignalRecord("2611.00001", "comments", 1)]
    assert append_signals(session, signals, ids, observed_at=NOW + timedelta(seconds=10), source=HF) == 2
    assert append_signals(session, signals, ids, observed_at=NOW + timedelta(seconds=50), source=HF) == 0
    later = [SignalRecord("2611.00001", "upvotes", 9)]
    assert append_signals(session, later, ids, observed_at=NOW + timedelta(minutes=1), source=HF) == 1
    assert _signals(session) == [
        ("upvotes", 5, NOW),
        ("comments", 1, NOW),
        ("upvotes", 9, NOW + timedelta(minutes=1)),
    ]


def test_signals_for_unknown_papers_are_ignored(session):
    assert (
        append_signals(session, [SignalRecord("9999.99999", "upvotes", 1)], {}, observed_at=NOW, source=HF)
        == 0
    )


# -- the lock -------------------------------------------------------------------------------------


def test_one_running_fetch_per_source(session):
    run = start_run(session, "arxiv")
    assert run.status == FetchStatus.RUNNING
    with pytest.raises(FetchAlreadyRunning, match="a arxiv fetch is already running since"):
        start_run(session, "arxiv")
    other = start_run(session, "huggingface")  # another source is not blocked
    assert other.id != run.id


def test_a_finished_run_releases_the_lock(session):
    run = start_run(session, "arxiv")
    run.status = FetchStatus.OK
    session.flush()
    assert start_run(session, "arxiv").id != run.id


def test_the_latest_run_of_each_source(session):
    first = start_run(session, "arxiv")
    first.status = FetchStatus.OK
    session.flush()
    second, hf = start_run(session, "arxiv"), start_run(session, "huggingface")
    latest = latest_run_per_source(session)
    assert {source: run.id for source, run in latest.items()} == {"arxiv": second.id, "huggingface": hf.id}
    assert [run.id for run in recent_runs(session, source="arxiv")] == [second.id, first.id]


def test_a_stale_run_is_marked_failed_and_the_lock_taken_over(session):
    with freeze_time(NOW):
        stale = start_run(session, "arxiv")
    with freeze_time(NOW + STALE_RUN_AFTER + timedelta(seconds=1)):
        fresh = start_run(session, "arxiv")
        assert fresh.started_at == clock.now()
    session.expire_all()
    assert session.get(FetchRun, stale.id).status == FetchStatus.FAILED
    [problem] = session.scalars(sa.select(FetchProblem).where(FetchProblem.run_id == stale.id))
    assert "abandoned" in problem.reason
