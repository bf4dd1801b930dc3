"""``up`` and ``web``: links in emails follow ``--bind`` unless PAPERMAIL_BASE_URL says otherwise."""

from __future__ import annotations

import pytest

from papermail import config
from papermail.cli.service import links_follow_bind, url_of_bind
from tests.conftest import settings_environ


@pytest.fixture
def environ(tmp_path, monkeypatch):
    """The test's settings in the process environment, PAPERMAIL_BASE_URL left out."""
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    values = settings_environ(tmp_path)
    del values["PAPERMAIL_BASE_URL"]
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PAPERMAIL_BASE_URL", "")  # so the one `up` sets is taken out again after the test
    monkeypatch.delenv("PAPERMAIL_BASE_URL")
    yield monkeypatch
    config.use_settings(None)


def test_unset_base_url_follows_the_bind_and_the_banner_says_so(environ):
    line = links_follow_bind("127.0.0.1:8300")
    assert (
        line
        == "links in emails http://127.0.0.1:8300  (from --bind; set PAPERMAIL_BASE_URL to choose another)"
    )
    # The children `up` starts inherit it, and every link (confirm, preferences, unsubscribe, view,
    # votes, List-Unsubscribe) is built from the settings' base URL.
    assert config.get_settings().base_url == "http://127.0.0.1:8300"


def test_a_set_base_url_wins_and_the_banner_says_it_differs(environ):
    environ.setenv("PAPERMAIL_BASE_URL", "https://papermail.example.org")
    line = links_follow_bind("127.0.0.1:8300")
    assert line == (
        "links in emails https://papermail.example.org  "
        "(PAPERMAIL_BASE_URL; not --bind 127.0.0.1:8300, which serves http://127.0.0.1:8300)"
    )
    assert config.get_settings().base_url == "https://papermail.example.org"


def test_a_set_base_url_equal_to_the_bind_is_just_named(environ):
    environ.setenv("PAPERMAIL_BASE_URL", "http://127.0.0.1:8300/")
    assert (
        links_follow_bind("127.0.0.1:8300") == "links in emails http://127.0.0.1:8300/  (PAPERMAIL_BASE_URL)"
    )


@pytest.mark.parametrize(
    ("bind", "url"),
    [
        ("0.0.0.0:8000", "http://localhost:8000"),
        ("[::]:8000", "http://localhost:8000"),
        ("host:80", "http://host:80"),
    ],
)
def test_a_wildcard_bind_links_to_localhost(bind, url):
    assert url_of_bind(bind) == url
