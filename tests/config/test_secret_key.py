"""A guessable secret key is refused in production, and ``papermail secret`` makes a good one."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from papermail import config
from papermail.cli import cli
from tests.config.refusal import refusal
from tests.conftest import settings_environ

WEAK = ["changeme", "changeme" * 4, "a" * 64, "password1234567890password1234567890"]


def _production(tmp_path, **values: str) -> dict[str, str]:
    return settings_environ(tmp_path, env="production", **values)


@pytest.mark.parametrize("weak", WEAK)
def test_a_weak_key_stops_start_up_and_names_the_command_that_makes_one(tmp_path, weak):
    for variable, values in (
        ("SECRET_KEY", {"secret_key": weak}),
        (
            "OLD_SECRET_KEYS",
            {"secret_key": config.make_secret(), "old_secret_keys": f"{config.make_secret()},{weak}"},
        ),
    ):
        message = refusal(tmp_path, variable, env="production", **values)
        assert message.startswith(f"PAPERMAIL_{variable}: is too weak for production"), message
        assert "`papermail secret`" in message and weak not in message


def test_papermail_secret_prints_a_key_production_accepts(tmp_path, monkeypatch):
    made = CliRunner().invoke(cli, ["secret"])
    assert made.exit_code == 0
    key = made.stdout.strip()
    assert len(key) == 64 and key != CliRunner().invoke(cli, ["secret"]).stdout.strip()
    settings = config.load_settings(
        _production(tmp_path, secret_key=key, old_secret_keys=config.make_secret())
    )
    assert settings.secret_key == key
    # Development keeps starting with whatever key is set.
    assert config.load_settings(settings_environ(tmp_path, secret_key="changeme")).secret_key == "changeme"
    # The command line says it in one line, as for every bad setting.
    for name, value in _production(tmp_path, secret_key="changeme").items():
        monkeypatch.setenv(name, value)
    config.use_settings(None)
    refused = CliRunner().invoke(cli, ["config"])
    assert refused.exit_code != 0
    assert "PAPERMAIL_SECRET_KEY: is too weak for production" in refused.stderr
    config.use_settings(None)
