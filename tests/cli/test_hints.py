"""Every "nothing yet" message names its real cause and the next command."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from freezegun import freeze_time

from papermail.db import session_scope
from papermail.db.models import FetchStatus, ScoringRun, TrendScore
from tests.cli.conftest import one_line_error

# A Saturday: weekly subscribers (Monday 08:00 UTC) are next due in two days.
SATURDAY = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


def test_no_papers_and_no_fetch_says_fetch(run):
    for command in (["trending"], ["score"], ["digest", "plan"]):
        result = run(*command)
        assert result.exit_code == 1, command
        line = one_line_error(result)
        assert "no papers yet: nothing has been fetched; run `papermail fetch`" in line, command
    assert "nothing has been fetched" in run("stats").stdout


def test_no_papers_names_the_last_fetch_and_its_error(run, seed):
    seed.fetch_run(
        "arxiv",
        datetime(2026, 12, 5, 5, 30, tzinfo=UTC),
        status=FetchStatus.FAILED,
        problems=["could not resolve rss.arxiv.org"],
    )
    line = one_line_error(run("trending"))
    assert line == (
        "no papers yet: the last arxiv fetch of 2026-12-05 05:30 UTC failed: could not resolve "
        "rss.arxiv.org; run `papermail fetch` (or `papermail demo load` to try papermail offline)"
    )


def test_score_with_no_papers_fails_and_says_why_without_an_empty_run(run, seed):
    result = run("score")
    assert result.exit_code == 1
    assert one_line_error(result).startswith("nothing to rank: no papers yet")
    assert seed.scalars(sa.select(ScoringRun)) == []


def test_papers_but_no_ranking_says_score(run, seed):
    run_id = seed.scoring_run([("2612.00001", "Sparse attention", "12 upvotes")])
    with session_scope(seed.settings) as session:
        session.execute(sa.delete(TrendScore).where(TrendScore.run_id == run_id))
        session.execute(sa.delete(ScoringRun).where(ScoringRun.id == run_id))
    line = one_line_error(run("trending"))
    assert line == "1 paper but no ranking yet: run `papermail score`"


def test_score_ranks_papers_and_answers_json(run, seed):
    seed.scoring_run([("2612.00001", "Sparse attention", "12 upvotes")])
    result = run("score", "--json")
    assert result.exit_code == 0, result.output
    runs = {summary["window"]: summary for summary in json.loads(result.stdout)}
    assert set(runs) == {"24h", "7d"} and all(summary["paper_count"] == 1 for summary in runs.values())


def test_digest_send_when_nobody_is_due_says_who_is_and_when(run, seed):
    with freeze_time(SATURDAY - timedelta(days=30)):
        for n in range(3):
            seed.subscriber(f"reader{n}@example.org")
    seed.scoring_run([("2612.00001", "Sparse attention", "12 upvotes")])
    with freeze_time(SATURDAY - timedelta(days=5)):
        run("digest", "send")  # plans this week's (Mon 30 Nov) for everyone
    with freeze_time(SATURDAY):
        result = run("digest", "send")
        assert result.exit_code == 0, result.output
        # This week's went out: the hint must not offer to send it again.
        assert result.stdout.strip() == (
            "· nothing to send now: 2026-W49 went out; the next, 2026-W50, is due Mon 7 Dec 08:00 UTC "
            "(in 2 days) for 3 subscribers"
        )
        as_json = json.loads(run("digest", "send", "--json").stdout)
    assert as_json["planned"] == 0 and as_json["queued"] == 0
    assert as_json["note"].startswith("nothing to send now: 2026-W49 went out")


def test_digest_send_offers_this_weeks_digest_to_who_joined_after_its_send_time(run, seed):
    seed.scoring_run([("2612.00001", "Sparse attention", "12 upvotes")])
    with freeze_time(SATURDAY):
        run("subscribers", "add", "late@example.org", "--confirmed")
        result = run("digest", "send")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        "· nothing to send now: 1 subscriber is due Mon 7 Dec 08:00 UTC (in 2 days); "
        "--period 2026-W49 sends this week's now"
    )


def test_digest_send_with_nobody_subscribed_says_how_to_subscribe(run, seed):
    seed.scoring_run([("2612.00001", "Sparse attention", "12 upvotes")])
    result = run("digest", "send")
    assert result.exit_code == 0
    assert "no active subscribers; add yourself with `papermail subscribers add" in result.stdout


def test_preview_out_of_an_empty_digest_fails_and_writes_nothing(run, seed, tmp_path):
    seed.subscriber("ann@example.org", topics=["math.AG"])
    seed.scoring_run([("2612.00001", "Sparse attention", "12 upvotes")], categories=["cs.LG"])
    out = tmp_path / "digest.html"
    result = run("digest", "preview", "ann@example.org", "-o", str(out))
    assert result.exit_code == 1
    assert one_line_error(result).startswith("no digest for ann@example.org in ")
    assert "wrote nothing to" in result.stderr
    assert not out.exists()
