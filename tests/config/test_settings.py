"""Settings come from PAPERMAIL_* variables; bad ones fail with one line naming the variable."""

import pytest

from papermail import config
from tests.config.refusal import refusal
from tests.conftest import settings_environ


def test_defaults_are_the_embedded_setup(tmp_path):
    settings = config.load_settings({"PAPERMAIL_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path}/papermail.db"
    assert settings.broker_url == f"sqla+sqlite:///{tmp_path}/broker.db"
    assert settings.mail_url == f"file://{tmp_path}/outbox"
    assert settings.base_url == "http://localhost:8000"
    assert settings.arxiv_categories == ("cs.AI", "cs.CL", "cs.CV", "cs.LG")
    assert settings.arxiv_rss_url == "https://rss.arxiv.org/rss/"


def test_development_secret_is_generated_once_and_kept(tmp_path, caplog):
    first = config.load_settings({"PAPERMAIL_DATA_DIR": str(tmp_path)})
    second = config.load_settings({"PAPERMAIL_DATA_DIR": str(tmp_path)})
    assert first.secret_key == second.secret_key
    assert len(first.secret_key) > 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert [r.levelname for r in caplog.records].count("WARNING") == 1


def test_production_refuses_to_start_without_a_secret(tmp_path):
    with pytest.raises(config.ConfigError, match="PAPERMAIL_SECRET_KEY: is required"):
        config.load_settings({"PAPERMAIL_DATA_DIR": str(tmp_path), "PAPERMAIL_ENV": "production"})


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BASE_URL", "localhost:8000", "PAPERMAIL_BASE_URL: must be an http(s) URL"),
        ("DATABASE_URL", "mysql://x", "PAPERMAIL_DATABASE_URL: must be a sqlite"),
        ("BROKER_URL", "amqp://x", "PAPERMAIL_BROKER_URL: must be redis"),
        ("MAIL_URL", "gopher://x", "PAPERMAIL_MAIL_URL: scheme must be one of"),
        ("FROM", "not an address", "PAPERMAIL_FROM: must be an email address"),
        ("DIGEST_SIZE", "-3", "PAPERMAIL_DIGEST_SIZE: must be a whole number from 1 to 50, got '-3'"),
        ("DIGEST_SIZE", "ten", "PAPERMAIL_DIGEST_SIZE: must be a whole number from 1 to 50, got 'ten'"),
        ("DIGEST_SIZE", "51", "PAPERMAIL_DIGEST_SIZE: must be a whole number from 1 to 50, got '51'"),
        (
            "FETCH_RETRIES",
            "three",
            "PAPERMAIL_FETCH_RETRIES: must be 0 or a positive whole number, got 'three'",
        ),
        ("HTTP_TIMEOUT", "soon", "PAPERMAIL_HTTP_TIMEOUT: must be a number, got 'soon'"),
        ("ENV", "staging", "PAPERMAIL_ENV: must be one of development, production"),
        ("ARXIV_CATEGORIES", " , ", "PAPERMAIL_ARXIV_CATEGORIES: must list at least one"),
        ("ARXIV_CATEGORIES", "cs.LG,cs.XY", "PAPERMAIL_ARXIV_CATEGORIES: 'cs.XY' is not an arXiv category"),
    ],
)
def test_bad_settings_name_the_variable(tmp_path, variable, value, message):
    assert refusal(tmp_path, variable, value).startswith(message)


def test_masked_hides_secrets_and_url_passwords(tmp_path):
    settings = config.load_settings(
        settings_environ(tmp_path, mail_url="smtp+starttls://user:hunter2@mail.example:587")
    )
    shown = settings.masked()
    assert shown["secret_key"] == "****"
    assert shown["mail_url"] == "smtp+starttls://user:****@mail.example:587"
    assert "hunter2" not in repr(settings)
    assert "test-secret-key" not in repr(settings)


def test_dotenv_file_supplies_settings_under_the_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("PAPERMAIL_DIGEST_SIZE=7\nPAPERMAIL_BASE_URL=https://a.example\n")
    monkeypatch.setenv("PAPERMAIL_BASE_URL", "https://b.example")
    monkeypatch.setenv("PAPERMAIL_DATA_DIR", str(tmp_path))
    settings = config.load_settings()
    assert settings.digest_size == 7
    assert settings.base_url == "https://b.example"


def test_configured_categories_are_canonicalised(tmp_path):
    environ = settings_environ(tmp_path, ARXIV_CATEGORIES="cs.lg, ASTRO-PH.ga,hep-th,cs.LG")
    assert config.load_settings(environ).arxiv_categories == ("cs.LG", "astro-ph.GA", "hep-th")
