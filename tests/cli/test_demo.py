"""``papermail demo load`` / ``demo remove``: the bundled sample goes in and out, exactly."""

from __future__ import annotations

import json
from datetime import timedelta

import sqlalchemy as sa
from freezegun import freeze_time

from papermail import clock
from papermail.db import session_scope
from papermail.db.models import FetchStatus, Paper, ScoringRun, SignalSnapshot
from papermail.demo import SAMPLE_PATH, read_sample
from papermail.sources.ingest import upsert_papers
from papermail.sources.records import PaperRecord
from tests.cli.conftest import one_line_error

MAX_SAMPLE_BYTES = 1_000_000


def _count(seed, model) -> int:
    return seed.scalar(sa.select(sa.func.count()).select_from(model))


def test_the_sample_is_small_and_holds_real_papers_with_a_fortnight_of_history():
    assert SAMPLE_PATH.stat().st_size <= MAX_SAMPLE_BYTES
    sample = read_sample()
    assert len(sample["papers"]) > 100 and len(sample["signals"]) == 30
    oldest = max(
        h for metrics in sample["signals"].values() for series in metrics.values() for h, _ in series
    )
    assert 13 * 24 <= oldest <= 14 * 24


def test_load_redates_ranks_and_answers_json(run, seed):
    result = run("demo", "load", "--json")
    assert result.exit_code == 0, result.output
    loaded = json.loads(result.stdout)
    assert loaded["papers"] == len(read_sample()["papers"]) and loaded["already"] is False
    newest = seed.scalar(sa.select(sa.func.max(Paper.published_at)))
    assert clock.now() - newest < timedelta(days=1)
    ranking = json.loads(run("trending", "--json", "-n", "3").stdout)
    assert ranking["run"]["id"] == loaded["run_id"] and len(ranking["papers"]) == 3
    again = run("demo", "load")
    assert again.exit_code == 0 and "already loaded" in again.stdout
    assert _count(seed, Paper) == loaded["papers"]


def test_every_hugging_face_paper_in_the_sample_has_an_arxiv_category():
    sample = read_sample()
    trending = [paper for paper in sample["papers"] if paper["arxiv_id"] in sample["signals"]]
    assert len(trending) == 30
    assert all(
        paper["categories"] and paper["primary_category"] == paper["categories"][0] for paper in trending
    )


def test_the_default_topics_get_the_demos_trending_papers(run):
    assert run("demo", "load").exit_code == 0
    assert run("subscribers", "add", "you@example.org", "--confirmed").exit_code == 0
    shown = json.loads(run("digest", "preview", "you@example.org", "--json").stdout)
    assert shown["text"].count("\nTrending: +") == 10, shown["text"]
    assert "no signals yet" not in shown["text"]


def test_load_goes_into_a_database_whose_fetches_all_failed(run, seed):
    for _ in range(11):  # an offline `scripts/up` logs a failed run per source and retry
        seed.fetch_run("huggingface", clock.now(), status=FetchStatus.FAILED, problems=["offline"])
    result = run("demo", "load")
    assert result.exit_code == 0, result.output
    assert _count(seed, Paper) == len(read_sample()["papers"])


def test_load_is_refused_on_a_database_with_papers_and_the_refusal_names_the_way_out(run, seed):
    with session_scope(seed.settings) as session:
        upsert_papers(session, [PaperRecord("2612.99999", 1, "A real paper")], now=clock.now())
    result = run("demo", "load")
    assert result.exit_code == 1
    assert one_line_error(result) == (
        "the demo loads only into a database with no papers, and it already holds 1 paper; see them "
        "with `papermail trending`, or try the demo in a data directory of its own: "
        "`PAPERMAIL_DATA_DIR=var-demo scripts/up --demo`"
    )


def test_remove_deletes_exactly_what_was_loaded_and_keeps_what_a_fetch_saw(run, seed):
    with session_scope(seed.settings) as session:
        upsert_papers(session, [PaperRecord("2612.99999", 1, "A real paper")], now=clock.now())
    # Real data refuses the demo: start over on a clean database for the rest.
    assert run("demo", "load").exit_code == 1
    with session_scope(seed.settings) as session:
        session.execute(sa.delete(Paper))
    assert run("demo", "load").exit_code == 0
    snapshots = _count(seed, SignalSnapshot)
    seen_again = read_sample()["papers"][0]["arxiv_id"]
    with freeze_time(clock.now() + timedelta(hours=1)), session_scope(seed.settings) as session:
        # The next real fetch adds to the demo: a new paper, and one of the sample's seen again.
        records = [PaperRecord("2612.88888", 1, "Fetched after the demo"), PaperRecord(seen_again, 1, "Seen")]
        upsert_papers(session, records, now=clock.now())
    result = run("demo", "remove", "--json")
    assert result.exit_code == 0, result.output
    removed = json.loads(result.stdout)
    assert removed["kept"] == [seen_again] and removed["snapshots"] == snapshots
    assert removed["papers"] == len(read_sample()["papers"]) - 1
    left = seed.scalars(sa.select(Paper.arxiv_id).order_by(Paper.arxiv_id))
    assert left == sorted(["2612.88888", seen_again])
    assert _count(seed, SignalSnapshot) == 0
    # What is left is ranked again, without the demo's own ranking.
    latest = seed.scalar(sa.select(ScoringRun).order_by(ScoringRun.id.desc()).limit(1))
    assert latest.paper_count == 2
    assert "not loaded" in run("demo", "remove").stdout
