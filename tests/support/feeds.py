"""A real local HTTP server standing in for every source, and settings pointed at it.

The server answers whatever a test routes: recorded files (with ETag / 304), scripted status
sequences (503 then 200, 429 with Retry-After), a request that never gets an answer, and an arXiv
API stand-in that answers id lookups and searches from the recorded API responses. Registered for
the whole suite: the fetch, trending and command-line tests all serve sources from it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from papermail import config

TEST_TIMEOUT_SECONDS = 0.5
RSS_PATH, API_PATH, HF_PATH = "/rss/", "/api/query", "/api/daily_papers"


@dataclass(frozen=True)
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    method: str = "GET"
    body: bytes = b""


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Responder = Callable[[Request], Reply]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # A client that timed out (on purpose, in the timeout tests) has closed the socket.
        return


class FeedServer:
    """A threaded HTTP server on 127.0.0.1 with per-path responders; it records every request."""

    def __init__(self) -> None:
        self.routes: dict[str, Responder] = {}
        self.prefixes: dict[str, Responder] = {}
        self.requests: list[Request] = []
        self.released = threading.Event()  # lets hanging responders go when the test ends
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    parts.path,
                    dict(parse_qsl(parts.query, keep_blank_values=True)),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.command,
                    self.rfile.read(length) if length else b"",
                )
                server.requests.append(request)
                responder = server.routes.get(parts.path) or next(
                    (r for prefix, r in server.prefixes.items() if parts.path.startswith(prefix)), None
                )
                reply = responder(request) if responder else Reply(404, b"no route")
                if server.released.is_set():
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, *_args) -> None:  # keep test output quiet
                return

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def route(self, path: str, responder: Responder) -> None:
        self.routes[path] = responder

    def route_prefix(self, prefix: str, responder: Responder) -> None:
        """Answer every path that starts with ``prefix``."""
        self.prefixes[prefix] = responder

    def requests_to(self, path: str) -> list[Request]:
        return [request for request in self.requests if request.path == path]

    def close(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()


# -- responders -----------------------------------------------------------------------------------


def serve_file(path: Path, *, etag: str | None = None, content_type: str = "application/xml") -> Responder:
    """Serve a file; with ``etag``, answer 304 to a matching If-None-Match (conditional GET)."""
    body = path.read_bytes()

    def respond(request: Request) -> Reply:
        if etag and request.headers.get("if-none-match") == etag:
            return Reply(304, headers={"ETag": etag})
        headers = {"Content-Type": content_type}
        if etag:
            headers["ETag"] = etag
        return Reply(200, body, headers)

    return respond


def in_sequence(*responders: Responder) -> Responder:
    """Each request gets the next responder's answer; the last one repeats."""
    remaining = list(responders)

    def respond(request: Request) -> Reply:
        current = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        return current(request)

    return respond


def status(code: int, headers: dict[str, str] | None = None) -> Responder:
    return lambda _request: Reply(code, f"status {code}".encode(), headers or {})


def never_answer(server: FeedServer) -> Responder:
    """Hold the request open until the test ends: the client must time out."""

    def respond(_request: Request) -> Reply:
        server.released.wait(30)
        return Reply(200)

    return respond


_FEED_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" '
    'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" xmlns:arxiv="http://arxiv.org/schemas/atom">\n'
    "<title>arXiv Query</title><opensearch:totalResults>{total}</opensearch:totalResults>\n"
)
_ENTRY = re.compile(r"<entry>.*?</entry>", re.DOTALL)


def arxiv_api(directory: Path) -> Responder:
    """The arXiv API, from recorded answers: searches by (query, start, max_results), id lookups
    by merging the recorded entry of each id (ids with no recording are absent, as on arXiv)."""

    def recorded(prefix: str, start: str, size: str) -> Path | None:
        matches = sorted(directory.glob(f"{prefix}_s{start}_m{size}_*.xml"))
        return matches[0] if matches else None

    def respond(request: Request) -> Reply:
        query = request.query
        start, size = query.get("start", "0"), query.get("max_results", "10")
        ids = [i for i in query.get("id_list", "").split(",") if i]
        if not ids:
            path = recorded("q_" + query.get("search_query", "").rsplit(":", 1)[-1], start, size)
            return Reply(200, path.read_bytes()) if path else Reply(404, b"nothing recorded")
        if ids == ["abc"]:  # recorded as arXiv's HTTP 400 with an Error entry
            return Reply(400, recorded("id_abc", "0", "100").read_bytes())
        entries = []
        for arxiv_id in ids:
            for path in sorted(directory.glob("id_*_s0_m100_*.xml")):
                name = path.name.split("_s0_m100_")[0].removeprefix("id_")
                if re.fullmatch(re.escape(arxiv_id.replace("/", "_")) + r"(v\d+)?", name):
                    entries.extend(_ENTRY.findall(path.read_text()))
                    break
        body = _FEED_HEAD.format(total=len(entries)) + "\n".join(entries) + "\n</feed>\n"
        return Reply(200, body.encode(), {"Content-Type": "application/atom+xml"})

    return respond


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


def point_at(settings: config.Settings, server: FeedServer, **overrides) -> config.Settings:
    """``settings`` with every source URL on ``server``, short timeouts and an in-memory broker."""
    values = {
        "arxiv_rss_url": server.url(RSS_PATH),
        "arxiv_categories": ("cs.AI",),
        "arxiv_api_url": server.url(API_PATH),
        "hf_api_url": server.url(HF_PATH),
        # The community sources (tests/support/signal_apis.py has their stand-ins, on these paths).
        "github_api_url": server.url("/github"),
        "hn_api_url": server.url("/hn/api/v1"),
        "bluesky_api_url": server.url("/bsky/xrpc"),
        "s2_api_url": server.url("/s2"),
        "http_timeout_seconds": TEST_TIMEOUT_SECONDS,
        "fetch_retries": 2,
        "fetch_contact": "ops@papermail.test",
        "broker_url": "memory://",
        # The 14-day Hugging Face refresh has its own tests (test_hf_refresh.py); elsewhere one
        # listing is one request.
        "hf_refresh_days": 0,
    }
    values.update(overrides)
    return replace(settings, **values)
