"""Smaller hardening points: noindex on personal pages, real arXiv archives, no shared gunicorn socket."""

from __future__ import annotations

import os
import socket
import subprocess

import httpx
import pytest

from papermail.arxiv_ids import parse_arxiv_id
from papermail.cli.service import gunicorn_argv
from papermail.subscribers import links
from tests.conftest import settings_environ, subprocess_env, wait_for
from tests.support.web import add_papers, link_path, preferences_path


def test_personal_pages_are_noindex(client, web_settings, people, session):
    ada = people.add("ada@example.org")
    paper = add_papers(session, ["A paper"])[0]
    vote = links.CompactTokens(web_settings, links.Purpose.VOTE).link(ada.id, paper.arxiv_id, 1)
    for path in (
        preferences_path(web_settings, ada),
        link_path(web_settings, links.Purpose.UNSUBSCRIBE, ada.id),
        vote.removeprefix(web_settings.base_url),
        "/preferences/forged",
    ):
        assert client.get(path).headers.get("X-Robots-Tag") == "noindex, nofollow", path


@pytest.mark.parametrize("text", ["../../etc/passwd/0101001", "passwd/0101001", "foo-bar/0101001"])
def test_an_old_style_id_needs_a_real_archive(text):
    with pytest.raises(ValueError, match="no arXiv id"):
        parse_arxiv_id(text)


def test_real_old_style_archives_still_parse():
    assert parse_arxiv_id("https://arxiv.org/abs/hep-th/9901001v3").id == "hep-th/9901001"
    assert parse_arxiv_id("math.GT/0309136").id == "math/0309136"


def test_papermail_web_leaves_no_control_socket_in_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = subprocess_env({**settings_environ(tmp_path / "data"), "HOME": str(home)})
    server = subprocess.Popen(
        gunicorn_argv(f"127.0.0.1:{port}", 1), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: _answers(port), timeout=30, message="gunicorn to answer")
        assert not (home / ".gunicorn").exists(), os.listdir(home / ".gunicorn")
    finally:
        server.terminate()
        server.wait(10)


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code in (200, 503)
    except httpx.HTTPError:
        return False
