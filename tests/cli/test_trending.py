"""``papermail score`` and ``papermail trending`` through Click, against a real database."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from papermail.cli import cli
from papermail.db import session_scope
from tests.support.trending import Corpus


def invoke(*args: str):
    # A wide terminal, so rich does not wrap the table's columns.
    return CliRunner(env={"COLUMNS": "200"}).invoke(cli, list(args))


@pytest.fixture
def papers(committed_settings, frozen) -> None:
    with session_scope(committed_settings) as session:
        corpus = Corpus(session)
        hot = corpus.paper(
            "2611.00001", age_hours=50, categories=("cs.CL", "cs.LG"), title="Attention, again"
        )
        corpus.observe(hot, "upvotes", (26, 18), (1, 60))
        corpus.paper(
            "2611.00002", age_hours=3, categories=("cs.RO",), title="[bold]Robots[/bold] <b>&amp;</b>"
        )


def test_score_says_what_it_did(papers):
    result = invoke("score")
    assert result.exit_code == 0, result.output
    assert result.output == (
        "scoring run 1 (24h): ranked 2 papers as of 2026-11-30 08:00 UTC\n"
        "scoring run 2 (7d): ranked 2 papers as of 2026-11-30 08:00 UTC\n"
    )


def test_trending_prints_rank_score_title_and_why(papers):
    invoke("score")
    result = invoke("trending", "--window", "24h")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].rstrip() == "Trending over the last 24 hours as of 2026-11-30 08:00 UTC (scoring run 1)"
    rows = [line for line in lines if "│" in line and "score" not in line]
    assert "1 │  7.00 │ Attention, again" in rows[0]
    assert "+42 upvotes today · 2 days old" in rows[0]
    # Feed text is printed as it is: neither rich markup nor HTML is interpreted.
    assert "2 │ -0.08 │ [bold]Robots[/bold] <b>&amp;</b>" in rows[1]
    assert "no signals yet · 3 hours old" in rows[1]


def test_trending_json_with_topic_and_limit(papers):
    invoke("score")
    result = invoke(
        "trending", "--topic", "cs.RO", "--topic", "cs.LG", "--limit", "1", "--window", "24h", "--json"
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert (shown["run"]["id"], shown["run"]["window"]) == (1, "24h")
    assert shown["run"]["as_of"] == "2026-11-30T08:00:00+00:00"
    assert shown["topics"] == ["cs.RO", "cs.LG"]
    assert shown["papers"] == [
        {
            "rank": 1,
            "score": 7.002745,
            "arxiv_id": "2611.00001",
            "title": "Attention, again",
            "evidence": "+42 upvotes today · 2 days old",
            "primary_category": "cs.CL",
            "categories": ["cs.CL", "cs.LG"],
            "url": "https://arxiv.org/abs/2611.00001",
            "signals": {"upvotes": 60},  # each source's numbers, as of the run
            "tldr": None,
        }
    ]


def test_a_topic_without_papers_says_so(papers):
    invoke("score")
    result = invoke("trending", "--topic", "math.OC")
    assert result.exit_code == 0, result.output
    assert result.output == (
        "Trending in math.OC over the last 7 days as of 2026-11-30 08:00 UTC (scoring run 2): no papers\n"
    )


def test_the_weekly_window_is_the_default_and_speaks_of_the_week(papers):
    invoke("score")
    result = invoke("trending", "--json")
    shown = json.loads(result.output)
    assert (shown["run"]["id"], shown["run"]["window"]) == (2, "7d")
    assert shown["papers"][0]["evidence"] == "+60 upvotes this week · 2 days old"


def test_trending_before_any_run_is_a_one_line_error(papers):
    result = invoke("trending")
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert "papers but no ranking yet: run `papermail score`" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--topic", "cs LG"], "'cs LG' is not an arXiv category; the closest are cs.LG, "),
        (["--topic", "cs.XX"], "'cs.XX' is not an arXiv category; the closest are "),
        (["--window", "30d"], "'30d' is not one of '24h', '7d'"),
        (["--limit", "0"], "0 is not in the range x>=1"),
    ],
)
def test_bad_options_are_usage_errors(papers, args, message):
    result = invoke("trending", *args)
    assert result.exit_code == 2
    assert message in result.output
