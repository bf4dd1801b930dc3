"""Forwarded headers count only behind a declared proxy: a real ``papermail web`` (gunicorn)."""

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.conftest import answers_ok, free_port, settings_environ, subprocess_env, wait_for


@contextmanager
def _gunicorn(tmp_path, database_url: str, proxy_count: int) -> Iterator[str]:
    environ = settings_environ(
        tmp_path / "var", database_url=database_url, proxy_count=str(proxy_count), broker_url="memory://"
    )
    port = free_port()
    log_path = tmp_path / f"web-{proxy_count}.log"
    with log_path.open("wb") as log:
        web = subprocess.Popen(
            [sys.executable, "-m", "papermail", "web", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
            env=subprocess_env(environ),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: answers_ok(f"{base}/healthz"), timeout=60, message=f"gunicorn ({log_path})")
        yield base
    finally:
        os.killpg(web.pid, 15)
        web.wait(30)


def _claims_https(base: str) -> tuple[str | None, str]:
    """The HSTS header and the session cookie of the home page asked for as if over https."""
    request = urllib.request.Request(f"{base}/", headers={"X-Forwarded-Proto": "https"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers.get("Strict-Transport-Security"), response.headers.get("Set-Cookie", "")


@pytest.mark.slow
def test_forwarded_proto_is_ignored_without_a_proxy_and_honoured_behind_one(databases, tmp_path):
    database = databases("sqlite")  # the headers are the web server's business, not the database's
    with _gunicorn(tmp_path, database.fresh(), proxy_count=0) as base:
        hsts, cookie = _claims_https(base)
        assert hsts is None
        assert "papermail_session" in cookie and "Secure" not in cookie
    with _gunicorn(tmp_path, database.fresh(), proxy_count=1) as base:
        hsts, cookie = _claims_https(base)
        assert hsts is not None
        assert "papermail_session" in cookie and "Secure" in cookie
