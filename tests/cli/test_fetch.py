"""``papermail fetch`` and ``papermail fetch log`` on a committed database."""

import json

import pytest
from click.testing import CliRunner

from papermail import config
from papermail.celery_app import reset_celery
from papermail.cli import cli
from tests.support.feeds import API_PATH, HF_PATH, RSS_PATH, arxiv_api, point_at, serve_file, status
from tests.support.signal_apis import SignalApis

LISTING_PATH = RSS_PATH + "cs.AI"


@pytest.fixture
def served_settings(database, settings, feed_server, shared_fixtures):
    """Process-wide settings on a fresh database, with every source served by the local server."""
    pointed = point_at(
        settings, feed_server, database_url=database.fresh(), fetch_retries=0, arxiv_delay_seconds=0
    )
    config.use_settings(pointed)
    reset_celery()
    feed_server.route(LISTING_PATH, serve_file(shared_fixtures / "arxiv-rss" / "arxiv_cs_ai.xml"))
    feed_server.route(HF_PATH, serve_file(shared_fixtures / "huggingface" / "hf_daily_papers.json"))
    feed_server.route(API_PATH, arxiv_api(shared_fixtures / "arxiv-api"))
    SignalApis(feed_server)  # GitHub, Hacker News and Semantic Scholar, with nothing to say yet
    return pointed


def invoke(*args: str):
    return CliRunner().invoke(cli, ["fetch", *args])


def _row(output: str, source: str) -> list[str]:
    """The cells of the table row for ``source``."""
    [line] = [line for line in output.splitlines() if f"│ {source} " in line]
    return [cell.strip() for cell in line.strip().strip("│").split("│")]


def test_fetch_prints_a_summary(served_settings):
    result = invoke("--source", "arxiv")
    assert result.exit_code == 0, result.output
    assert "fetch summary" in result.output
    assert _row(result.output, "arxiv") == ["arxiv", "ok", "3", "0", "0", "0", "0"]


def test_one_source_failing_does_not_stop_the_other(served_settings, feed_server):
    # Hugging Face fails: the sources run at the same time, and arXiv's listing needs no lookups,
    # so each outcome is the same whichever finishes first.
    feed_server.route(HF_PATH, status(503))
    result = invoke("--json")
    assert result.exit_code == 1
    summaries = {s["source"]: s for s in json.loads(result.stdout)}
    hf = summaries["huggingface"]
    assert hf["status"] == "failed" and hf["new_papers"] == 0
    assert hf["problems"][0].startswith("feed http://127.0.0.1:")
    assert "/api/daily_papers" in hf["problems"][0]
    assert hf["problems"][0].endswith("HTTP 503 Service Unavailable (no retries configured)")
    arxiv = summaries["arxiv"]
    assert (arxiv["status"], arxiv["new_papers"]) == ("ok", 3)
    assert json.loads(result.stderr) == {"error": "fetch did not complete for huggingface"}


def test_the_log_shows_runs_and_their_problems(served_settings, feed_server):
    feed_server.route(LISTING_PATH, status(503))
    invoke("--source", "arxiv")
    invoke("--source", "hf")
    result = invoke("log", "--source", "arxiv")
    assert result.exit_code == 0, result.output
    assert "fetch runs, newest first" in result.output
    assert _row(result.output, "arxiv")[4:] == ["failed", "0", "0", "0", "0", "1"]
    assert "/rss/cs.AI: HTTP 503 Service Unavailable (no retries configured)" in result.output
    runs = json.loads(invoke("log", "--json").stdout)
    assert [run["source"] for run in runs] == ["huggingface", "arxiv"]
    assert runs[1]["problems"][0]["kind"] == "feed"
    # arXiv doesn't know the unrecorded ids: notices, listed in the log but not errors.
    assert {p["kind"] for p in runs[0]["problems"]} == {"notice"} and len(runs[0]["problems"]) == 30


def test_the_summary_points_to_the_log_for_more_problems(served_settings):
    result = invoke("--source", "hf")
    assert result.exit_code == 0, result.output
    assert "huggingface: … and 20 more (papermail fetch log lists them)" in result.output


def test_an_empty_log_says_so(served_settings):
    result = invoke("log")
    assert result.exit_code == 0 and result.output.strip() == "no fetch runs yet"


def test_a_bad_date_is_a_usage_error(served_settings):
    result = invoke("--date", "2026-13-01")
    assert result.exit_code == 2
    assert "2026-13-01" in result.output
