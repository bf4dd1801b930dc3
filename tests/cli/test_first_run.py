"""``papermail up`` as a newcomer runs it: a real subprocess on an empty data directory.

With the sources pointed at a local stand-in serving the recorded feeds, the home page lists
trending papers within a minute and nobody typed a command; with ``--demo`` it works offline.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.first_steps import ctrl_c
from tests.conftest import free_port, settings_environ, subprocess_env, wait_for
from tests.support.feeds import (
    API_PATH,
    HF_PATH,
    RSS_PATH,
    FeedServer,
    Reply,
    arxiv_api,
    serve_file,
)

pytestmark = pytest.mark.slow

# The home page shows the top 5; the most upvoted paper of the recording is among them.
HF_TOP_TITLE = "MiniMax Sparse Attention"
# The demo's ranking is made at load time from histories ending then: its top paper is fixed.
DEMO_TOP_TITLE = "VIA-SD: Verification via Intra-Model Routing for Speculative Decoding"


class Up:
    """A running ``papermail up``; its output goes to a log file shown when a test fails."""

    def __init__(self, environ: dict[str, str], log_path: Path, *args: str) -> None:
        self.port, self.log_path = free_port(), log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "papermail", "up", "--bind", f"127.0.0.1:{self.port}", *args],
                env=subprocess_env(environ),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def home(self) -> str:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/", timeout=5).text
        except httpx.TransportError:
            return ""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_home(self, text: str) -> None:
        """Wait up to a minute for ``text`` on the home page; on failure, show up's output."""
        try:
            wait_for(
                lambda: text in self.home(), timeout=60, interval=1, message=f"{text!r} on the home page"
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- papermail up ---\n{self.log()}") from None

    def stop(self) -> None:
        """Ctrl-C, as a person would; up stops its web, worker and beat itself."""
        ctrl_c(self.process, timeout=30)


@pytest.fixture
def start_up(tmp_path: Path) -> Iterator:
    started: list[Up] = []

    def start(environ: dict[str, str], *args: str) -> Up:
        up = Up(environ, tmp_path / f"up-{len(started)}.log", *args)
        started.append(up)
        return up

    yield start
    for up in started:
        up.stop()


def _stand_in(server: FeedServer, fixtures: Path) -> dict[str, str]:
    server.route(RSS_PATH + "cs.LG", serve_file(fixtures / "arxiv-rss" / "arxiv_cs_lg.xml"))
    hf = serve_file(fixtures / "huggingface" / "hf_daily_papers.json", content_type="application/json")
    server.route(HF_PATH, hf)
    api = arxiv_api(fixtures / "arxiv-api")

    def api_or_nothing(request):
        # Backfill searches have no recording: answer an empty result, as arXiv does for a quiet day.
        if "search_query" in request.query:
            return Reply(200, b'<feed xmlns="http://www.w3.org/2005/Atom"></feed>')
        return api(request)

    server.route(API_PATH, api_or_nothing)
    return {
        "ARXIV_RSS_URL": server.url(RSS_PATH),
        "ARXIV_CATEGORIES": "cs.LG",
        "ARXIV_API_URL": server.url(API_PATH),
        "HF_API_URL": server.url(HF_PATH),
        "ARXIV_API_DELAY": "0",
        "BACKFILL_DAYS": "2",
        "FETCH_RETRIES": "0",
        "HTTP_TIMEOUT": "5",
        # The recordings are months old; the ranking would rightly leave them out as stale news.
        "TREND_MAX_AGE_DAYS": "365",
    }


def _backfill_searches(server: FeedServer) -> list[str]:
    return [r.query["search_query"] for r in server.requests_to(API_PATH) if "search_query" in r.query]


def test_up_on_an_empty_data_dir_shows_trending_papers_without_a_command(
    start_up, tmp_path, feed_server, shared_fixtures, database
):
    sources = _stand_in(feed_server, shared_fixtures)
    # SQLite: the embedded default in the empty data dir. PostgreSQL: a fresh, empty database.
    url = {} if database.backend == "sqlite" else {"database_url": database.fresh()}
    environ = settings_environ(tmp_path / "var", mail_url=f"file://{tmp_path}/outbox", **url, **sources)
    up = start_up(environ)
    up.wait_for_home(HF_TOP_TITLE)
    # The catch-up fetched both sources and backfilled the last two arXiv days in cs.LG.
    wait_for(
        lambda: len(_backfill_searches(feed_server)) >= 2, timeout=60, interval=1, message="the backfill"
    )
    assert feed_server.requests_to(RSS_PATH + "cs.LG") and feed_server.requests_to(HF_PATH)
    # Celery's banners (the worker's config block, beat's "LocalTime ->") stay out of the way.
    assert "[queues]" not in up.log() and "LocalTime ->" not in up.log()


def test_up_demo_works_offline(start_up, tmp_path):
    # Every source URL points at a closed port: nothing may be fetched, and nothing needs to be.
    closed = f"http://127.0.0.1:{free_port()}/"
    offline = {"ARXIV_RSS_URL": closed, "ARXIV_API_URL": closed, "HF_API_URL": closed}
    environ = settings_environ(tmp_path / "var", mail_url=f"file://{tmp_path}/outbox", **offline)
    up = start_up(environ, "--demo")
    up.wait_for_home(DEMO_TOP_TITLE)
    assert "loaded the demo: " in up.log()

    def papermail(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "papermail", *args]
        return subprocess.run(
            command, env=subprocess_env(environ), capture_output=True, text=True, timeout=120
        )

    ranking = json.loads(papermail("trending", "--json").stdout)
    assert DEMO_TOP_TITLE in [paper["title"] for paper in ranking["papers"]]
    # The default topics: the sample's Hugging Face papers carry their arXiv categories.
    added = papermail("subscribers", "add", "me@example.org", "--confirmed")
    assert added.returncode == 0, added.stderr
    preview = papermail("digest", "preview", "me@example.org")
    assert preview.returncode == 0 and DEMO_TOP_TITLE in preview.stdout, preview.stderr
    period = preview.stdout.split()[0]  # "2026-W49 digest for me@example.org (…)"
    sent = papermail("digest", "send", "--period", period, "--wait", "--timeout", "90")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    outbox = list((tmp_path / "outbox").glob("*.eml"))
    assert len(outbox) == 1 and DEMO_TOP_TITLE in outbox[0].read_text(errors="replace")
