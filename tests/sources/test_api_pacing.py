"""One arXiv API pace across processes, and seed look-ups merged into batched ``id_list`` calls."""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import replace

import pytest

from papermail.sending.pacing import DatabaseSendPacer, RedisSendPacer
from papermail.sources import lookups
from papermail.sources.api_pacing import FileTimeline, SharedPacer
from papermail.subscribers import votes
from tests.conftest import REDIS_URL
from tests.support.feeds import API_PATH, FeedServer, arxiv_api
from tests.support.web import People

INTERVAL = 30.0  # seconds: large, so the slots asserted below can't be met by the test's own pace


def _timelines(kind: str, settings, tmp_path):
    """Two independent handles on one timeline, as two worker processes would hold."""
    key = f"papermail-test:arxiv:{uuid.uuid4().hex}"
    if kind == "file":
        return [FileTimeline(tmp_path / "arxiv-api.pace", INTERVAL).reserve for _ in range(2)]
    if kind == "redis":
        return [RedisSendPacer(REDIS_URL, key, 1 / INTERVAL).reserve for _ in range(2)]
    return [DatabaseSendPacer(settings, key, 1 / INTERVAL).reserve for _ in range(2)]


@pytest.mark.parametrize("kind", ["file", "redis", "database"])
def test_calls_from_two_processes_share_one_timeline(kind, settings, tmp_path):
    slept: list[float] = []
    first, second = (
        SharedPacer(reserve, sleep=slept.append) for reserve in _timelines(kind, settings, tmp_path)
    )
    waits = [first.wait(), second.wait(), first.wait()]
    assert waits[0] == 0
    assert INTERVAL - 1 < waits[1] <= INTERVAL
    assert 2 * INTERVAL - 1 < waits[2] <= 2 * INTERVAL
    assert slept == waits[1:]


def test_another_process_waits_its_turn_on_the_file_timeline(tmp_path):
    FileTimeline(tmp_path / "arxiv-api.pace", INTERVAL).reserve()
    code = (
        "import sys; from pathlib import Path; from papermail.sources.api_pacing import FileTimeline; "
        f"print(FileTimeline(Path(sys.argv[1]), {INTERVAL}).reserve())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "arxiv-api.pace")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert INTERVAL - 5 < float(out.stdout) <= INTERVAL


def test_seed_look_ups_of_many_readers_go_out_as_one_batched_call(session, settings, shared_fixtures):
    server = FeedServer()
    server.route(API_PATH, arxiv_api(shared_fixtures / "arxiv-api"))
    try:
        settings = replace(settings, arxiv_api_url=server.url(API_PATH))
        people = People(session)
        ada, bob = people.add("ada@example.org"), people.add("bob@example.org")
        votes.record_votes(session, ada.id, ["1605.08386"], votes.MORE, votes.FROM_SEED)
        votes.record_votes(session, bob.id, ["1707.08567"], votes.MORE, votes.FROM_SEED)
        # Ada's task runs first and takes Bob's seed along; Bob's task then has nothing to ask.
        assert lookups.look_up_papers(session, settings, ["1605.08386"]) == {}
        assert lookups.look_up_papers(session, settings, ["1707.08567"]) == {}
        assert [r.query["id_list"] for r in server.requests] == ["1605.08386,1707.08567"]
        assert lookups.unknown_papers(session, ["1605.08386", "1707.08567"]) == []
    finally:
        server.close()
