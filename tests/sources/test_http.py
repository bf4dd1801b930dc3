"""The HTTP client against a real local server: retries, Retry-After, timeouts, conditional GET."""

import socket
import time
from datetime import timedelta
from email.utils import format_datetime

import pytest

from papermail import clock
from papermail.sources.http import FetchError, HttpClient, Validators
from tests.support.feeds import (
    RSS_PATH,
    TEST_TIMEOUT_SECONDS,
    in_sequence,
    never_answer,
    serve_file,
    status,
)


@pytest.fixture
def feed_file(shared_fixtures):
    return shared_fixtures / "arxiv-rss" / "arxiv_cs_ai.xml"


def test_a_503_then_200_is_retried_after_a_backoff(feed_server, http_client, fake_time, feed_file):
    feed_server.route(RSS_PATH, in_sequence(status(503), serve_file(feed_file)))
    fetched = http_client.get(feed_server.url(RSS_PATH))
    assert fetched.status == 200
    assert fetched.content == feed_file.read_bytes()
    assert len(feed_server.requests_to(RSS_PATH)) == 2
    [wait] = fake_time.sleeps
    backoff = http_client.backoff_seconds
    assert backoff <= wait <= backoff * 1.25


def test_backoff_doubles_and_then_gives_up_with_the_reason(feed_server, http_client, fake_time):
    feed_server.route(RSS_PATH, status(503))
    with pytest.raises(FetchError, match=r"HTTP 503 Service Unavailable \(gave up after 3 attempts\)"):
        http_client.get(feed_server.url(RSS_PATH))
    assert len(feed_server.requests_to(RSS_PATH)) == 3
    first, second = fake_time.sleeps
    assert second > first * 1.5  # exponential, whatever the jitter


def test_429_waits_as_long_as_retry_after_asks(feed_server, http_client, fake_time, feed_file):
    feed_server.route(RSS_PATH, in_sequence(status(429, {"Retry-After": "7"}), serve_file(feed_file)))
    assert http_client.get(feed_server.url(RSS_PATH)).status == 200
    assert fake_time.sleeps == [7.0]


def test_retry_after_may_be_an_http_date(feed_server, http_client, fake_time, feed_file):
    later = format_datetime(clock.now() + timedelta(seconds=30), usegmt=True)
    feed_server.route(RSS_PATH, in_sequence(status(503, {"Retry-After": later}), serve_file(feed_file)))
    assert http_client.get(feed_server.url(RSS_PATH)).status == 200
    [wait] = fake_time.sleeps
    assert 25 <= wait <= 31


def test_a_retry_after_longer_than_a_task_is_an_error_not_a_wait(feed_server, http_client, fake_time):
    feed_server.route(RSS_PATH, status(429, {"Retry-After": "3600"}))
    with pytest.raises(FetchError, match=r"HTTP 429 Too Many Requests; asked to retry after 3600 s"):
        http_client.get(feed_server.url(RSS_PATH))
    assert fake_time.sleeps == []
    assert len(feed_server.requests_to(RSS_PATH)) == 1


def test_a_server_that_never_answers_times_out(feed_server, client_settings, fake_time):
    feed_server.route(RSS_PATH, never_answer(feed_server))
    client = HttpClient(
        user_agent="papermail-test",
        timeout_seconds=TEST_TIMEOUT_SECONDS,
        retries=1,
        backoff_seconds=1,
        sleep=fake_time.sleep,
    )
    started = time.monotonic()
    with client, pytest.raises(FetchError, match=r"timed out after 0.5 s \(gave up after 2 attempts\)"):
        client.get(feed_server.url(RSS_PATH))
    assert time.monotonic() - started < 4 * TEST_TIMEOUT_SECONDS
    assert len(feed_server.requests_to(RSS_PATH)) == 2


def test_a_refused_connection_is_retried_then_reported(http_client, fake_time):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchError, match=r"connection failed: .*gave up after 3 attempts"):
        http_client.get(f"http://127.0.0.1:{port}/rss/")
    assert len(fake_time.sleeps) == 2


def test_a_404_is_final_and_keeps_the_body(feed_server, http_client, fake_time):
    feed_server.route(RSS_PATH, status(404))
    with pytest.raises(FetchError) as failure:
        http_client.get(feed_server.url(RSS_PATH))
    assert failure.value.status == 404
    assert failure.value.body == b"status 404"
    assert fake_time.sleeps == []


def test_conditional_get_turns_an_unchanged_feed_into_a_304(feed_server, http_client, feed_file):
    feed_server.route(RSS_PATH, serve_file(feed_file, etag='"v1"'))
    url = feed_server.url(RSS_PATH)
    first = http_client.get(url)
    assert first.status == 200 and first.validators == Validators('"v1"', None)
    second = http_client.get(url, validators=first.validators)
    assert second.not_modified and second.content == b""
    assert second.validators == first.validators
    assert feed_server.requests_to(RSS_PATH)[1].headers["if-none-match"] == '"v1"'


def test_last_modified_is_sent_back_as_if_modified_since(feed_server, http_client, feed_file):
    feed_server.route(RSS_PATH, serve_file(feed_file))
    stamp = "Mon, 27 Apr 2026 04:00:00 GMT"
    http_client.get(feed_server.url(RSS_PATH), validators=Validators(None, stamp))
    assert feed_server.requests_to(RSS_PATH)[0].headers["if-modified-since"] == stamp


def test_the_user_agent_names_papermail_and_a_contact(feed_server, http_client, feed_file):
    feed_server.route(RSS_PATH, serve_file(feed_file))
    http_client.get(feed_server.url(RSS_PATH), params={"limit": 5})
    request = feed_server.requests_to(RSS_PATH)[0]
    assert request.headers["user-agent"].startswith("papermail/")
    assert "mailto:ops@papermail.test" in request.headers["user-agent"]
    assert request.query == {"limit": "5"}


def test_pacing_runs_before_every_attempt_including_retries(
    feed_server, http_client, pacer, fake_time, feed_file
):
    feed_server.route(RSS_PATH, in_sequence(status(503), serve_file(feed_file)))
    http_client.get(feed_server.url(RSS_PATH), before_attempt=pacer.wait)
    http_client.get(feed_server.url(RSS_PATH), before_attempt=pacer.wait)
    backoff, top_up, pacing = fake_time.sleeps
    # The retry waited its backoff, then the pacing topped the gap up to 3 s; the next call, 3 s.
    assert backoff >= http_client.backoff_seconds
    assert backoff + top_up == pytest.approx(3.0)
    assert pacing == pytest.approx(3.0)
