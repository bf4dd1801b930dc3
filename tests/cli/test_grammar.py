"""One command-line grammar: exit codes 0 / 1 / 2 everywhere, ``--json`` that parses, ``--version``."""

from __future__ import annotations

import json
import socket
from dataclasses import replace

import click
import httpx
import pytest

from papermail import config
from papermail.celery_app import reset_celery
from papermail.cli import cli
from papermail.sources.http import HttpClient, _name_not_resolved
from tests.conftest import free_port

# Every command on an empty, migrated install with no network: what it exits with.
# 0 done or nothing to do, 1 failed (the line says why and what to run), 2 bad usage.
EXIT_CODES = [
    (["--version"], 0),
    (["config"], 0),
    (["db", "current"], 0),
    (["db", "upgrade"], 0),
    (["stats"], 0),
    (["fetch", "log"], 0),
    (["digest", "status"], 0),
    (["digest", "resume"], 0),
    (["resend", "--failed"], 0),
    (["subscribers", "list"], 0),
    (["subscribers", "export"], 0),
    (["demo", "remove"], 0),
    (["fetch"], 1),
    (["score"], 1),
    (["trending"], 1),
    (["digest", "plan"], 1),
    (["digest", "send"], 1),
    (["digest", "preview", "ann@example.org"], 1),
    (["resend", "ann@example.org"], 1),
    (["subscribers", "remove", "ann@example.org"], 1),
    (["doctor", "--worker", "0.2"], 1),
    (["subscribers", "add", "not-an-email"], 2),
    (["subscribers", "import", "/nonexistent/people.csv"], 2),
    (["trending", "--limit", "0"], 2),
    (["digest", "status", "--period", "someday"], 2),
    (["digest", "preview", "ann@example.org", "-o", "digest.pdf"], 2),
    (["up", "--bind", "nonsense"], 2),
    (["no-such-command"], 2),
]


@pytest.fixture
def offline(cli_settings):
    """The sources on a closed port, no retries: the install has no network."""
    closed = f"http://127.0.0.1:{free_port()}/"
    offline = replace(
        cli_settings, arxiv_rss_url=closed, arxiv_api_url=closed, hf_api_url=closed, fetch_retries=0
    )
    config.use_settings(offline)
    reset_celery()
    return offline


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("args", "code"), EXIT_CODES, ids=[" ".join(a) for a, _ in EXIT_CODES])
def test_exit_codes_on_an_empty_install(run, offline, args, code, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    result = run(*args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    if code == 1 and args[0] != "doctor":  # the doctor's table is its answer
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    if code and args[0] != "doctor":
        assert result.stderr.strip().splitlines()[-1].startswith("Error: ")


def _commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        if any("--json" in param.opts for param in command.params):
            yield (*path, name)


# The arguments each --json command needs, run after `demo load` with one subscriber.
JSON_ARGS = {
    ("subscribers", "add"): ["me@example.org", "--confirmed", "--keywords", "decoding"],
    ("subscribers", "remove"): ["old@example.org"],
    ("subscribers", "import"): ["people.csv"],
    ("resend",): ["--failed"],
    ("digest", "send"): ["--period", "2026-W49"],
    ("digest", "plan"): ["--period", "2026-W49"],
    ("digest", "preview"): ["old@example.org"],
    ("doctor",): ["--worker", "0"],
    ("bounces", "import"): ["bounce.eml"],
    ("bounces", "show"): ["1"],  # the verdict the import recorded
    ("subscribers", "reactivate"): ["old@example.org"],
}
BOUNCE = (
    "From: MAILER-DAEMON@mx.example.org\nMIME-Version: 1.0\n"
    'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
    "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.org\n\n"
    "Final-Recipient: rfc822; gone@example.net\nAction: failed\nStatus: 5.1.1\n\n--b--\n"
)


def test_every_json_option_prints_json(run, offline, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "people.csv").write_text("email\nnew@example.org\n")
    (tmp_path / "bounce.eml").write_text(BOUNCE)
    # `demo remove` last: the others need the sample it removes.
    commands = sorted(_commands(cli), key=lambda path: (path == ("demo", "remove"), path))
    assert ("config",) in commands and ("digest", "send") in commands and ("db", "current") in commands
    assert json.loads(run("demo", "load", "--json").stdout)["papers"] > 100
    run("subscribers", "add", "old@example.org", "--confirmed")
    for path in commands:
        result = run(*path, *JSON_ARGS.get(path, []), "--json")
        assert result.exit_code in (0, 1), (path, result.output)
        answer = result.stdout if result.exit_code == 0 else result.stdout or result.stderr
        assert answer.strip(), (path, result.output)
        json.loads(answer)  # parses, whatever happened ({"error": ...} on stderr)
        # Offline fetches fail, and no bounce mailbox is configured here.
        failing = {("fetch",), ("doctor",), ("bounces", "fetch")}
        assert result.exit_code == 0 or path in failing, (path, result.output)


def test_every_json_option_answers_json_on_an_empty_install_errors_included(
    run, offline, monkeypatch, tmp_path
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "people.csv").write_text("email\nnew@example.org\n")
    run("db", "upgrade")
    for path in sorted(_commands(cli)):
        result = run(*path, *JSON_ARGS.get(path, []), "--json")
        assert "Traceback" not in result.output, path
        if result.exit_code == 0:
            json.loads(result.stdout)
            continue
        if path in {("fetch",), ("doctor",)}:  # their report is the answer, failed or not
            json.loads(result.stdout)
            continue
        # A failure is one JSON object on stderr, with the exit code the plain command gives.
        assert result.stdout.strip() == "", (path, result.output)
        error = json.loads(result.stderr)
        assert set(error) == {"error"} and error["error"], path
        assert run(*path, *JSON_ARGS.get(path, [])).exit_code == result.exit_code, path


def test_commands_on_a_database_never_migrated_name_db_upgrade(run, cli_settings, tmp_path):
    config.use_settings(replace(cli_settings, database_url=f"sqlite:///{tmp_path}/never-migrated.db"))
    for command in (["fetch"], ["trending"], ["stats"], ["subscribers", "list"]):
        result = run(*command)
        assert result.exit_code == 1, command
        assert result.stderr.strip() == (
            "Error: the database has no tables yet: run `papermail db upgrade` (`papermail up` does it too)"
        ), command


def test_version(run):
    result = run("--version")
    assert result.exit_code == 0 and result.stdout.startswith("papermail ")


def test_a_busy_port_is_one_line_with_the_bind_hint(run):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("web", "--bind", f"127.0.0.1:{port}")
    assert result.exit_code == 1
    assert result.stderr.strip().endswith(f"pick another with --bind 127.0.0.1:{port + 1}")
    assert len(result.stderr.strip().splitlines()) == 1


def test_topics_take_comma_lists_and_repeat(run):
    result = run(
        "subscribers", "add", "ann@example.org", "--topics", "cs.LG,cs.CL", "--topics", "stat.ML", "--json"
    )
    assert json.loads(result.stdout)["topics"] == ["cs.CL", "cs.LG", "stat.ML"]


def test_a_name_that_does_not_resolve_is_not_retried():
    lookup = socket.gaierror(-2, "Name or service not known")
    error = httpx.ConnectError("[Errno -2] Name or service not known")
    error.__cause__ = lookup
    assert _name_not_resolved(error)
    assert not _name_not_resolved(httpx.ConnectError("[Errno 111] Connection refused"))
    assert HttpClient  # the client raises at once on it: see test_fetch_offline_is_one_line
