"""``subscribers add --like/--mix`` and ``subscribers like``: seeds by id or URL, looked up on arXiv when new;
and votes and the mix through ``subscribers export`` and ``import``.

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
from papermail.db.models import Paper, Subscriber, SubscriberStatus, Vote
from papermail.subscribers import votes
from tests.cli.conftest import one_line_error
from tests.support.feeds import API_PATH, FeedServer, arxiv_api


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
    assert "weekly, Mon 08:00 UTC; relevance mix 3\n" in added.stdout
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
    assert nobody.exit_code == 1 and one_line_error(nobody).startswith(
        "no subscriber bob@example.org; see who"
    )
    assert arxiv.requests_to(API_PATH) == []


def test_export_lists_votes_and_purge_erases_them(run, seed, arxiv):
    assert run("subscribers", "add", "ada@example.org", "--confirmed", "--like", "1605.08386").exit_code == 0
    assert run("subscribers", "like", "ada@example.org", "1707.08567", "--less").exit_code == 0
    exported = run("subscribers", "export")
    [row] = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert (row["relevance_mix"], row["likes"], row["dislikes"]) == ("2", "1605.08386", "1707.08567")
    assert run("subscribers", "remove", "ada@example.org", "--purge", "--yes").exit_code == 0
    assert seed.scalars(sa.select(Vote)) == []


def give_votes(seed, email: str, given: dict[str, int], *, mix: int | None = None, source=votes.FROM_DIGEST):
    """Votes (and the mix) straight into the database, as the digest's links would record them."""
    with session_scope(seed.settings) as session:
        subscriber = session.scalar(sa.select(Subscriber).where(Subscriber.email == email))
        for arxiv_id, value in given.items():
            votes.record_vote(session, subscriber.id, arxiv_id, value, source)
        if mix is not None:
            subscriber.relevance_mix = mix


def everyone_s_interests(seed) -> dict[str, tuple[int, dict[str, int]]]:
    """Each address's mix and votes."""
    with session_scope(seed.settings) as session:
        return {
            s.email: (s.relevance_mix, {vote.arxiv_id: vote.value for vote in s.votes})
            for s in session.scalars(sa.select(Subscriber))
        }


def without_dates(export: str) -> list[list[str]]:
    """The export's rows, without the columns an import sets to its own time."""
    rows = list(csv.reader(io.StringIO(export)))
    dated = [n for n, name in enumerate(rows[0]) if name.endswith("_at")]
    return [[cell for n, cell in enumerate(row) if n not in dated] for row in rows]


def test_votes_and_the_mix_round_trip_through_export_and_import(run, seed, arxiv, tmp_path):
    seed.scoring_run([("1605.08386", "Known paper", "")])
    seed.subscriber("ada@example.org")
    seed.subscriber("bob@example.org")
    seed.subscriber("cy@example.org", status=SubscriberStatus.UNSUBSCRIBED)
    # Ids papermail has not fetched (new and old style) are kept as they are, with no lookup.
    give_votes(seed, "ada@example.org", {"1605.08386": 1, "2411.01234": 1, "1707.08567": -1}, mix=3)
    give_votes(seed, "bob@example.org", {}, mix=0)
    give_votes(seed, "cy@example.org", {"hep-th/9901001": -1}, mix=4, source=votes.FROM_SEED)
    held = everyone_s_interests(seed)
    exported = run("subscribers", "export")
    assert exported.exit_code == 0
    path = tmp_path / "export.csv"
    path.write_text(exported.stdout)

    with session_scope(seed.settings) as session:  # an empty database
        session.execute(sa.delete(Vote))
        session.execute(sa.delete(Subscriber))
    restored = run("subscribers", "import", str(path))
    assert restored.exit_code == 0, restored.output
    assert "3 added, 0 updated, 0 unchanged" in restored.stdout
    assert everyone_s_interests(seed) == held
    assert without_dates(run("subscribers", "export").stdout) == without_dates(exported.stdout)
    # Imported again, nothing changes.
    again = run("subscribers", "import", str(path))
    assert "0 added, 0 updated, 3 unchanged" in again.stdout
    assert everyone_s_interests(seed) == held

    # Purged, an address stays out, votes and all: import never adds a suppressed address back.
    assert run("subscribers", "remove", "ada@example.org", "--purge", "--yes").exit_code == 0
    after_purge = run("subscribers", "import", str(path))
    assert "skipped 1 on the suppression list" in after_purge.stdout
    assert "ada@example.org" not in everyone_s_interests(seed)
    assert seed.scalars(sa.select(Vote.arxiv_id).where(Vote.arxiv_id == "2411.01234")) == []
    assert arxiv.requests_to(API_PATH) == []


def test_import_adds_to_the_votes_a_subscriber_has_and_keeps_the_rest(run, seed, tmp_path):
    seed.subscriber("ada@example.org")
    give_votes(seed, "ada@example.org", {"1605.08386": 1, "1707.08567": -1})
    path = tmp_path / "votes.csv"
    # An older file: 1605.08386 disliked there; a new like; the dislike of 1707.08567 not listed.
    path.write_text(
        "email,likes,dislikes,relevance_mix\n"
        "ada@example.org,arXiv:2411.01234v2 https://arxiv.org/abs/2401.00001,1605.08386,1\n"
    )
    first = run("subscribers", "import", str(path))
    assert first.exit_code == 0, first.output
    assert "0 added, 1 updated, 0 unchanged" in first.stdout
    assert votes_of(seed, "ada@example.org") == {
        "1605.08386": -1,
        "1707.08567": -1,
        "2411.01234": 1,
        "2401.00001": 1,
    }
    assert seed.scalar(sa.select(Subscriber.relevance_mix)) == 1
    # A vote given in a digest stays one; the ones the file adds count as seeds.
    with session_scope(seed.settings) as session:
        sources = dict(session.execute(sa.select(Vote.arxiv_id, Vote.source)).all())
    assert sources == {
        "1605.08386": "digest",
        "1707.08567": "digest",
        "2411.01234": "seed",
        "2401.00001": "seed",
    }
    assert "0 added, 0 updated, 1 unchanged" in run("subscribers", "import", str(path)).stdout


BAD_VOTES_CSV = """\
email,relevance_mix,likes,dislikes
mix.high@example.org,7,,
mix.word@example.org,lots,,
bad.id@example.org,2,1605.08386;not-an-id,
bad.link@example.org,,https://example.org/abs/1605.08386,
formula@example.org,,'=2+3,
both@example.org,,1605.08386,arXiv:1605.08386v3
good@example.org,4,1605.08386,1707.08567
"""


def test_bad_votes_and_mixes_are_one_line_each_naming_row_and_column(run, seed, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(BAD_VOTES_CSV)
    result = run("subscribers", "import", str(path), "--strict")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{path}:2: relevance_mix must be a whole number from 0 to 4, got '7'",
        f"{path}:3: relevance_mix must be a whole number from 0 to 4, got 'lots'",
        f"{path}:4: likes: 'not-an-id' is not an arXiv id (like 2411.01234) or an arXiv link",
        f"{path}:5: likes: https://example.org/abs/1605.08386 is not an arXiv link (arxiv.org/abs/… or "
        "arxiv.org/pdf/…)",
        f"{path}:6: likes: '=2+3' is not an arXiv id (like 2411.01234) or an arXiv link",
        f"{path}:7: 1605.08386 is in both likes and dislikes",
        f"Error: 6 bad rows in {path}; imported nothing (--strict)",
    ]
    assert seed.scalars(sa.select(Subscriber)) == []
    assert run("subscribers", "import", str(path)).exit_code == 1  # the good row goes in
    assert votes_of(seed, "good@example.org") == {"1605.08386": 1, "1707.08567": -1}
    assert seed.scalar(sa.select(Subscriber.relevance_mix)) == 4
