"""``subscribers add --like/--mix`` and ``subscribers like``: seeds by id or URL, looked up on arXiv when new.

The arXiv API is a local server answering from the recorded responses in the shared fixtures.
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import pytest
import sqlalchemy as sa

from papermail import config
from papermail.db import session_scope
from papermail.db.models import Paper, Subscriber, Vote
from tests.cli.conftest import one_line_error
from tests.sources.conftest import API_PATH, FeedServer, arxiv_api


@pytest.fixture
def arxiv(cli_settings, shared_fixtures):
    """The recorded arXiv API on a local port, and the settings pointing at it."""
    server = FeedServer()
    server.route(API_PATH, arxiv_api(shared_fixtures / "arxiv-api"))
    config.use_settings(replace(cli_settings, arxiv_api_url=server.url(API_PATH)))
    yield server
    server.close()


def votes_of(seed, email: str) -> dict[str, int]:
    query = sa.select(Vote.arxiv_id, Vote.value).join(Subscriber).where(Subscriber.email == email)
    with session_scope(seed.settings) as session:
        return dict(session.execute(query).all())


def test_add_with_likes_by_id_and_url_and_a_mix(run, seed, arxiv):
    added = run(
        "subscribers",
        "add",
        "ada@example.org",
        "--confirmed",
        "--like",
        "1605.08386",
        "--like",
        "https://arxiv.org/abs/1707.08567v2",
        "--mix",
        "3",
    )
    assert added.exit_code == 0, added.output
    assert "fetched 2 from the arXiv API: 1605.08386, 1707.08567" in added.stdout
    assert "relevance mix 2 → 3" in added.stdout
    assert votes_of(seed, "ada@example.org") == {"1605.08386": 1, "1707.08567": 1}
    assert len(seed.scalars(sa.select(Paper.arxiv_id))) == 2
    assert seed.scalar(sa.select(Subscriber.relevance_mix)) == 3
    # Known papers need no lookup; voting again changes the vote.
    again = run("subscribers", "like", "ada@example.org", "https://arxiv.org/pdf/1605.08386", "--less")
    assert again.exit_code == 0, again.output
    assert "fetched" not in again.stdout and "less like 1605.08386" in again.stdout
    assert votes_of(seed, "ada@example.org") == {"1605.08386": -1, "1707.08567": 1}
    assert len(arxiv.requests_to(API_PATH)) == 1


def test_ids_arxiv_does_not_have_are_reported_in_one_line(run, seed, arxiv):
    seed.subscriber("ada@example.org")
    # Recorded: arXiv answers 0808.05394 with no entry, and 1605.08386 with its paper.
    result = run("subscribers", "like", "ada@example.org", "0808.05394", "1605.08386")
    assert result.exit_code == 1
    assert one_line_error(result) == "not recorded: 0808.05394 (not on arXiv)"
    assert "more like 1605.08386" in result.stdout
    assert votes_of(seed, "ada@example.org") == {"1605.08386": 1}


def test_bad_input_is_one_line(run, seed, arxiv):
    seed.subscriber("ada@example.org")
    bad = run("subscribers", "like", "ada@example.org", "https://example.org/abs/1605.08386")
    assert bad.exit_code == 2 and "is not an arXiv link" in one_line_error(bad)
    mix = run("subscribers", "add", "ada@example.org", "--mix", "9")
    assert mix.exit_code == 2 and "from 0 (trending only) to 4" in mix.stderr
    nobody = run("subscribers", "like", "bob@example.org", "1605.08386")
    assert nobody.exit_code == 1 and one_line_error(nobody) == "no subscriber bob@example.org"
    assert arxiv.requests_to(API_PATH) == []


def test_export_lists_votes_and_purge_erases_them(run, seed, arxiv):
    assert run("subscribers", "add", "ada@example.org", "--confirmed", "--like", "1605.08386").exit_code == 0
    assert run("subscribers", "like", "ada@example.org", "1707.08567", "--less").exit_code == 0
    exported = run("subscribers", "export")
    [row] = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert (row["relevance_mix"], row["likes"], row["dislikes"]) == ("2", "1605.08386", "1707.08567")
    assert run("subscribers", "remove", "ada@example.org", "--purge", "--yes").exit_code == 0
    assert seed.scalars(sa.select(Vote)) == []
