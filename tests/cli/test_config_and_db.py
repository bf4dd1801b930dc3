"""The command line: one-line errors with meaningful exit codes, migrations, masked config."""

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from papermail import config
from papermail.cli import cli
from papermail.db import migrate
from tests.conftest import REPO_ROOT, settings_environ, subprocess_env


def test_config_masks_secrets_and_says_where_each_value_came_from(tmp_path, monkeypatch):
    for name, value in settings_environ(tmp_path, mail_url="smtp://user:hunter2@127.0.0.1:25").items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("PAPERMAIL_DIGEST_SIZE=7\nPAPERMAIL_BASE_URL=https://ignored.test\n")
    config.use_settings(None)
    try:
        result = CliRunner().invoke(cli, ["config"])
        as_json = json.loads(CliRunner().invoke(cli, ["config", "--json"]).stdout)
    finally:
        config.use_settings(None)
    assert result.exit_code == 0, result.output
    assert "test-secret-key" not in result.output and "hunter2" not in result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert lines["PAPERMAIL_SECRET_KEY"].endswith("****  (environment)")
    assert lines["PAPERMAIL_MAIL_URL"].endswith("smtp://user:****@127.0.0.1:25  (environment)")
    assert as_json["PAPERMAIL_DIGEST_SIZE"] == {"value": "7", "source": ".env"}
    assert as_json["PAPERMAIL_BASE_URL"] == {"value": "https://papermail.test", "source": "environment"}
    assert as_json["PAPERMAIL_BACKFILL_DAYS"] == {"value": "7", "source": "default"}


def test_db_upgrade_is_idempotent(settings):
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"database already at {migrate.head_revision(settings)}"


def _python(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS`` in a fresh process with exactly ``env``; its output as text."""
    command = [sys.executable, *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)


def test_a_bad_setting_is_one_line_and_exit_2(tmp_path):
    environ = settings_environ(tmp_path, base_url="localhost")
    result = _python(tmp_path, subprocess_env(environ), "-m", "papermail", "config")
    assert result.returncode == 2
    assert result.stderr.strip() == ("Error: PAPERMAIL_BASE_URL: must be an http(s) URL, got 'localhost'")


def test_unreachable_database_is_one_line_and_exit_1(tmp_path):
    environ = settings_environ(tmp_path, database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    result = _python(tmp_path, subprocess_env(environ), "-m", "papermail", "db", "upgrade")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_installed_wheel_migrates_from_any_directory(tmp_path):
    """The wheel carries the migrations and templates and works outside the checkout."""
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(REPO_ROOT),
        ],
        check=True,
        capture_output=True,
    )
    target = tmp_path / "site"
    wheel = next(dist.glob("papermail-*.whl"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    assert (target / "papermail" / "templates").is_dir()
    assert (target / "papermail" / "db" / "migrations" / "env.py").is_file()
    env = settings_environ(tmp_path / "data")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PAPERMAIL_")},
        **env,
        "PYTHONPATH": str(target),
    }
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = _python(elsewhere, env, "-m", "papermail", "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert f"migrated database from empty to {migrate.head_revision()}" in result.stdout
    probe = "import papermail.resources as r; print(r.templates_dir())"
    shown = _python(elsewhere, env, "-c", probe)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip().startswith(str(target))
    # The offline demo ships in the wheel, small, and loads from there.
    sample = target / "papermail" / "demo" / "sample.json.gz"
    assert sample.is_file() and sample.stat().st_size <= 1_000_000
    demo = _python(elsewhere, env, "-m", "papermail", "demo", "load", "--json")
    assert demo.returncode == 0, demo.stderr
    assert json.loads(demo.stdout)["papers"] > 100
