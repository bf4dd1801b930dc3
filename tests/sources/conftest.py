"""Fixtures for the sources: the recorded feeds, a fake clock, and the HTTP client on it.

The stand-in server itself (``feed_server``) and ``point_at`` are in tests/support/feeds.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from papermail import config
from papermail.celery_app import reset_celery
from papermail.sources.arxiv_api import Pacer
from papermail.sources.http import HttpClient
from tests.conftest import make_settings
from tests.support.feeds import FeedServer, point_at

DATA_DIR = Path(__file__).with_name("data")


@pytest.fixture(scope="session")
def api_fixtures(shared_fixtures: Path) -> Path:
    return shared_fixtures / "arxiv-api"


class FakeTime:
    """A monotonic clock that only moves when something sleeps on it; records every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def fetch_settings(settings: config.Settings, feed_server: FeedServer) -> config.Settings:
    """The test backend's settings with the sources on the local server, installed process-wide."""
    pointed = point_at(settings, feed_server)
    config.use_settings(pointed)
    reset_celery()
    return pointed


@pytest.fixture
def client_settings(tmp_path: Path, feed_server: FeedServer) -> config.Settings:
    """Settings for tests that need the HTTP side only (no database)."""
    return point_at(make_settings(tmp_path), feed_server)


@pytest.fixture
def http_client(client_settings: config.Settings, fake_time: FakeTime) -> Iterator[HttpClient]:
    """The real client, retrying on the fake clock: backoffs and Retry-After are recorded, not slept."""
    with HttpClient.from_settings(client_settings, sleep=fake_time.sleep) as client:
        yield client


@pytest.fixture
def pacer(client_settings: config.Settings, fake_time: FakeTime) -> Pacer:
    """The arXiv API pacing (3 s by default) on the fake clock."""
    return Pacer(client_settings.arxiv_delay_seconds, sleep=fake_time.sleep, monotonic=fake_time.monotonic)
