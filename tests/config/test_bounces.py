"""The intake settings: each bad value stops start-up with one line naming its variable."""

import pytest

from tests.config.refusal import refusal
from tests.conftest import make_settings


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("inbound_bind", "2525", "must be HOST:PORT"),
        ("inbound_bind", "0.0.0.0:99999", "must be HOST:PORT"),
        ("inbound_max_bytes", "0", "positive whole number"),
        ("inbound_rate_per_ip", "lots", "must look like 10/h"),
        ("bounce_imap_url", "imap://u:p@host/INBOX", "imaps://"),
        ("bounce_imap_url", "imaps://host/INBOX", "imaps://"),
        ("bounce_imap_ca_file", "/nonexistent/ca.pem", "not a readable file"),
        ("bounce_imap_cron", "every minute", "crontab"),
        ("postmark_webhook_auth", "just-a-password", "USER:PASSWORD"),
        ("sendgrid_public_key", "bm90IGEga2V5", "public key"),
        ("webhook_max_age", "-5", "positive number"),
    ],
)
def test_a_bad_value_names_its_variable(tmp_path, name, value, problem):
    assert problem in refusal(tmp_path, name.upper(), value)


def test_unset_means_off(tmp_path):
    settings = make_settings(tmp_path)
    assert settings.inbound_bind is None and settings.bounce_imap_url is None
    assert not (settings.webhook_secret or settings.mailgun_signing_key or settings.ses_topic_arns)
    assert settings.inbound_max_bytes == 1024 * 1024
