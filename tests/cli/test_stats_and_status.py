"""``papermail stats`` and ``papermail digest status``: the numbers, from a real database."""

import json
from datetime import timedelta

import pytest

from papermail import clock
from papermail.db.models import DeliveryStatus, FetchStatus, SubscriberStatus
from tests.cli.conftest import one_line_error

S = DeliveryStatus


@pytest.fixture
def populated(seed):
    """Subscribers, two periods of deliveries, fetch runs and two rankings (plus one unfinished)."""
    for name in ("ok1", "ok2", "ok3", "bounce", "dead", "maybe", "later"):
        seed.subscriber(f"{name}@example.org")
    seed.subscriber("new@example.org", status=SubscriberStatus.PENDING)
    seed.subscriber("gone@example.org", status=SubscriberStatus.UNSUBSCRIBED)
    seed.deliveries("2026-W47", {"ok1@example.org": S.FAILED}, smtp_code=554, reply="554 rejected")
    seed.deliveries("2026-W48", {f"ok{n}@example.org": S.SENT for n in (1, 2, 3)})
    seed.deliveries(
        "2026-W48", {"bounce@example.org": S.FAILED}, smtp_code=550, reply="550 5.1.1 no such user"
    )
    seed.deliveries("2026-W48", {"dead@example.org": S.EXHAUSTED}, smtp_code=451, reply="451 try later")
    seed.deliveries("2026-W48", {"maybe@example.org": S.UNCERTAIN, "later@example.org": S.RETRY})
    now = clock.now()
    seed.fetch_run("arxiv", now - timedelta(days=1), status=FetchStatus.FAILED, problems=["old"])
    seed.fetch_run(
        "arxiv",
        now - timedelta(hours=1),
        status=FetchStatus.PARTIAL,
        problems=[f"bad entry {n}" for n in range(7)],
        new_papers=12,
    )
    seed.fetch_run("huggingface", now - timedelta(minutes=5), new_papers=3)
    seed.scoring_run([("2401.00001", "Old news", "")], as_of=now - timedelta(days=2))
    seed.scoring_run(
        [(f"2411.0000{n}", f"Paper {n}", f"+{10 - n} upvotes / 24h") for n in range(1, 8)],
        as_of=now - timedelta(hours=1),
    )
    seed.scoring_run([("2411.09999", "Still scoring", "")], finished=False, as_of=now)


def test_stats_json(run, populated):
    result = run("stats", "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["subscribers"] == {"pending": 1, "active": 7, "unsubscribed": 1, "bounced": 0}
    assert stats["period_key"] == "2026-W48"
    assert stats["deliveries"] == {
        "pending": 0,
        "sending": 0,
        "sent": 3,
        "retry": 1,
        "skipped": 0,
        "failed": 1,
        "exhausted": 1,
        "uncertain": 1,
    }
    # 550 is a bounce; 451-then-exhausted is not: 1 of (3 sent + 1 rejected).
    assert stats["bounces"] == {"bounced": 1, "handed_over": 4, "rate": 0.25}
    arxiv, hf = stats["fetches"]
    assert (arxiv["source"], arxiv["status"], arxiv["new_papers"]) == ("arxiv", "partial", 12)
    assert arxiv["problem_count"] == 7
    assert arxiv["problems"] == [f"entry: bad entry {n} (entry-{n})" for n in range(5)]
    assert (hf["source"], hf["problems"], hf["problem_count"]) == ("huggingface", [], 0)
    assert [p["arxiv_id"] for p in stats["trending"]] == [f"2411.0000{n}" for n in range(1, 6)]
    assert stats["trending"][0]["evidence"] == "+9 upvotes / 24h"


def test_stats_for_another_period_and_as_a_table(run, populated):
    older = json.loads(run("stats", "--period", "2026-W47", "--json").stdout)
    assert older["deliveries"]["failed"] == 1 and older["bounces"]["rate"] == 1.0  # 554: rejected too
    table = run("stats")
    assert table.exit_code == 0
    for expected in (
        "Deliveries, period 2026-W48",
        "bounce rate 25.00% (1 rejected of 4 handed to SMTP)",
        "arxiv: entry: bad entry 0 (entry-0)",
        "arxiv: … and 2 more",
        "Paper 1 (2411.00001)",
    ):
        assert expected in table.stdout


def test_stats_on_an_empty_database(run):
    result = run("stats", "--json")
    assert result.exit_code == 0
    stats = json.loads(result.stdout)
    assert stats["period_key"] is None and stats["fetches"] == [] and stats["trending"] == []
    assert stats["bounces"]["rate"] is None
    assert stats["confirmations"] == {"owed": 0, "sent": 0, "failed": 0, "uncertain": 0, "skipped": 0}
    assert "no papers yet: nothing has been fetched; run `papermail fetch`" in run("stats").stdout


def test_digest_status_lists_what_did_not_go_out(run, populated):
    result = run("digest", "status")
    assert result.exit_code == 0, result.output
    assert "Deliveries, period 2026-W48" in result.stdout
    listed = [line for line in result.stdout.splitlines() if "@example.org" in line]
    assert [line.split()[1] for line in listed] == [
        "bounce@example.org",
        "dead@example.org",
        "maybe@example.org",
    ]
    assert "550 5.1.1 no such user" in listed[0]
    assert "papermail resend --period 2026-W48 --failed" in result.stdout

    as_json = json.loads(run("digest", "status", "--period", "2026-W47", "--json").stdout)
    assert as_json["period_key"] == "2026-W47" and as_json["counts"]["failed"] == 1
    assert [row["email"] for row in as_json["undelivered"]] == ["ok1@example.org"]


def test_digest_status_before_any_digest(run):
    result = run("digest", "status")
    assert result.exit_code == 0
    assert "no digest has been planned yet" in result.stdout


@pytest.mark.parametrize(
    ("period", "message"),
    [
        ("2026-W61", "period 2026-W61 is not a valid ISO week"),
        ("2026-02-30", "period 2026-02-30 is not a valid date"),
        ("next week", "period 'next week' is neither an ISO week like 2026-W48 nor a date like 2026-11-26"),
    ],
)
def test_a_bad_period_is_one_line_and_exit_2(run, period, message):
    for command in (["digest", "status"], ["stats"]):
        result = run(*command, "--period", period)
        assert result.exit_code == 2
        assert one_line_error(result) == message


def test_stats_count_the_ranked_papers_still_without_a_category(run, seed):
    seed.scoring_run([(f"2612.0000{n}", f"Paper {n}", "12 upvotes") for n in range(1, 6)])
    assert json.loads(run("stats", "--json").stdout)["ranked_without_category"] == 0
    assert "every ranked paper has its arXiv category" in run("stats").stdout
    seed.drop_categories(["2612.00002", "2612.00004"])
    assert json.loads(run("stats", "--json").stdout)["ranked_without_category"] == 2
    assert "2 ranked papers without an arXiv category yet" in run("stats").stdout
    assert json.loads(run("stats", "--json").stdout)["trending"][0]["arxiv_id"] == "2612.00001"
