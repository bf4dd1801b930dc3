"""URL passwords never reach an error message, a log line or ``doctor`` output."""

import logging

import pytest
from click.testing import CliRunner

from papermail import config
from papermail.cli import cli
from papermail.redaction import mask_secrets
from tests.config.refusal import refusal
from tests.conftest import settings_environ

PASSWORD = "Pa55-w0rd"

BAD_URLS = [
    ("DATABASE_URL", f"mysql://app:{PASSWORD}@db.internal/app"),
    ("DATABASE_URL", f"postgresql+psycopg://app:{PASSWORD}@db.internal:port/app"),
    ("DATABASE_URL", f"postgresql+psycopg://app:{PASSWORD}@db.internal:99999/app"),
    ("BROKER_URL", f"amqp://app:{PASSWORD}@mq.internal//"),
    ("BROKER_URL", f"redis://:{PASSWORD}@redis.internal:six/0"),
    ("BROKER_URL", f"redis://:{PASSWORD}@/0"),
    ("MAIL_URL", f"gopher://app:{PASSWORD}@mail.internal"),
    ("MAIL_URL", f"smtp+starttls://app:{PASSWORD}@mail.internal:submission"),
    ("MAIL_URL", f"smtps://app:{PASSWORD}@:465"),
    # Characters a URL should have escaped: still hidden whole.
    ("MAIL_URL", f"gopher://app:{PASSWORD} x@y@mail.internal"),
    ("BROKER_URL", f"amqp://app:{PASSWORD}@@mq.internal//"),
]


@pytest.mark.parametrize(("variable", "value"), BAD_URLS)
def test_every_bad_url_setting_is_refused_without_its_password(tmp_path, variable, value):
    message = refusal(tmp_path, variable, value)
    assert PASSWORD not in message and "****" in message


@pytest.mark.parametrize(("variable", "value"), BAD_URLS[:3])
def test_the_command_line_prints_a_bad_url_without_its_password(tmp_path, monkeypatch, variable, value):
    for name, setting in settings_environ(tmp_path, **{variable: value}).items():
        monkeypatch.setenv(name, setting)
    config.use_settings(None)
    try:
        result = CliRunner().invoke(cli, ["config"])
    finally:
        config.use_settings(None)
    assert result.exit_code == 2
    assert PASSWORD not in result.output
    assert f"PAPERMAIL_{variable}" in result.output


def test_masking_keeps_urls_without_passwords_and_hides_every_password():
    text = (
        f"db postgresql+psycopg://app:{PASSWORD}@db/app broker redis://:{PASSWORD}@r:6379/0 "
        "plain redis://r:6379/0 mail someone@example.org"
    )
    masked = mask_secrets(text)
    assert PASSWORD not in masked
    assert "postgresql+psycopg://app:****@db/app" in masked
    assert "redis://:****@r:6379/0" in masked
    assert "plain redis://r:6379/0 mail someone@example.org" in masked


def test_log_lines_and_tracebacks_are_masked_once_the_cli_has_started(tmp_path, monkeypatch, caplog):
    for name, setting in settings_environ(tmp_path).items():
        monkeypatch.setenv(name, setting)
    config.use_settings(None)
    try:
        assert CliRunner().invoke(cli, ["config"]).exit_code == 0
    finally:
        config.use_settings(None)
    logger = logging.getLogger("papermail.test_redaction")
    logger.warning("cannot reach %s", f"redis://:{PASSWORD}@redis.internal:6379/0")
    try:
        raise ConnectionError(f"smtp://app:{PASSWORD}@mail.internal:587 refused")
    except ConnectionError:
        logger.exception("send failed")
    assert "redis://:****@redis.internal:6379/0" in caplog.text
    assert PASSWORD not in caplog.text
