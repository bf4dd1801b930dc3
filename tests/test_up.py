"""``papermail up`` runs web, worker and beat on the embedded defaults, and stops on Ctrl-C."""

import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from tests.conftest import settings_environ, subprocess_env, wait_for


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.mark.slow
def test_up_serves_and_stops_cleanly_without_postgres_or_redis(tmp_path):
    environ = settings_environ(tmp_path / "var")
    # The embedded defaults: no database, broker or mail URL, so SQLite files in the data dir.
    environ.pop("PAPERMAIL_MAIL_URL")
    port = _free_port()
    log_path = tmp_path / "up.log"
    with log_path.open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "papermail", "up", "--bind", f"127.0.0.1:{port}"],
            env=subprocess_env(environ),
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: _healthy(f"http://127.0.0.1:{port}/healthz"), timeout=60, message="web")
        wait_for(lambda: "celery@" in log_path.read_text(), timeout=60, message="the worker")
        wait_for(lambda: "beat: Starting" in log_path.read_text(), timeout=60, message="beat")
        up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0
    finally:
        if up.poll() is None:
            up.kill()
    log_text = log_path.read_text()
    assert "Traceback" not in log_text, log_text
    assert (tmp_path / "var" / "papermail.db").exists()
    assert (tmp_path / "var" / "broker.db").exists()
