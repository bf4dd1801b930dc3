"""The sending settings: defaults, and one clear error naming the variable for a bad value."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from papermail.config import ConfigError
from tests.config.refusal import refusal
from tests.conftest import make_settings


def test_the_defaults_suit_a_weekly_digest(tmp_path):
    settings = make_settings(tmp_path)
    assert settings.send_batch_size == 100 and settings.smtp_max_per_connection == 100
    assert settings.send_rate == 0  # no limit
    assert settings.give_up_hours == 48 and settings.max_worker_deaths == 3
    assert (settings.late_limit_hours, settings.late_policy) == (24, "send-late-once")
    assert settings.send_lease_seconds >= 3 * settings.smtp_timeout_seconds
    assert settings.dkim_key_path is None and settings.dkim_selector == "papermail"
    assert settings.masked()["dkim_key_path"] == "(not set)"


@pytest.mark.parametrize(
    ("overrides", "variable", "problem"),
    [
        ({"send_batch_size": "0"}, "SEND_BATCH_SIZE", "positive whole number"),
        ({"send_rate": "-5"}, "SEND_RATE", "zero or a positive number"),
        ({"late_policy": "never"}, "LATE_POLICY", "send-late-once, skip"),
        ({"give_up_hours": "soon"}, "GIVE_UP_HOURS", "must be a number, got 'soon'"),
        ({"smtp_timeout": "30", "send_lease_seconds": "60"}, "SEND_LEASE_SECONDS", "at least 3 times"),
        ({"retry_base_seconds": "600", "retry_max_seconds": "60"}, "RETRY_MAX_SECONDS", "not be less"),
        ({"dkim_key_path": "/nonexistent/dkim.pem"}, "DKIM_KEY_PATH", "cannot read the DKIM private key"),
        ({"dkim_domain": "not a domain"}, "DKIM_DOMAIN", "domain name like example.org"),
    ],
)
def test_a_bad_value_names_its_variable(tmp_path, overrides, variable, problem):
    assert re.search(problem, refusal(tmp_path, variable, **overrides))


def test_a_dkim_key_must_be_a_pem_private_key(tmp_path: Path):
    not_a_key = tmp_path / "key.pem"
    not_a_key.write_text("hello")
    with pytest.raises(ConfigError, match="is not a PEM private key"):
        make_settings(tmp_path, dkim_key_path=str(not_a_key))
