"""Every command that prints settings or errors hides URL userinfo and secret-named query parameters."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from papermail import config
from papermail.cli import cli
from tests.conftest import settings_environ
from tests.support.feeds import API_PATH, FeedServer

SECRETS = [f"S3cret{n}" for n in range(7)]
CLOSED = "127.0.0.1:1"  # nothing listens: every check fails at once, quoting its URL
FORMS = {
    "database_url": f"postgresql+psycopg://app:p@ss{SECRETS[0]}@{CLOSED}/app?password={SECRETS[1]}",
    "broker_url": f"redis://{CLOSED}/0?password={SECRETS[2]}",
    "arxiv_api_url": f"http://{CLOSED}/api/query?key={SECRETS[3]}",
    "hf_api_url": f"http://{CLOSED}/hf?token={SECRETS[4]}&signature={SECRETS[5]}",
    "mail_url": f"smtp://mailer:p@ss@{SECRETS[6]}@{CLOSED}",
}
COMMANDS = [["config"], ["config", "--json"], ["doctor"], ["doctor", "--json"], ["stats"], ["trending"]]


@pytest.fixture
def environ(tmp_path, monkeypatch):
    def use(**values: str) -> None:
        for name, value in settings_environ(tmp_path, **values).items():
            monkeypatch.setenv(name, value)
        config.use_settings(None)

    yield use
    config.use_settings(None)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_no_command_prints_a_secret_of_any_form(environ, command):
    environ(**FORMS)
    result = CliRunner().invoke(cli, command)
    shown = result.output + (result.stderr or "")
    assert shown.strip(), command
    assert not [s for s in SECRETS if s in shown], shown
    assert "****" in shown or result.exit_code != 0


@pytest.mark.parametrize(("variable", "value"), FORMS.items())
def test_a_refused_setting_is_named_without_its_secret(environ, variable, value):
    environ(**{variable: value.replace(CLOSED, "127.0.0.1:port"), "env": "production"})
    result = CliRunner().invoke(cli, ["config"])
    assert result.exit_code == 2, result.output
    assert not [s for s in SECRETS if s in result.output], result.output


def test_doctor_keeps_the_query_the_api_url_already_has(environ):
    server = FeedServer()
    server.route(API_PATH, lambda request: (200, b"<feed/>"))
    try:
        environ(arxiv_api_url=server.url(API_PATH) + "?key=abc")
        CliRunner().invoke(cli, ["doctor"])
        [request] = [r for r in server.requests if r.path == API_PATH]
        assert request.query == {"key": "abc", "id_list": "", "max_results": "0"}
    finally:
        server.close()
