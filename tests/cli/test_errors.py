"""Errors are one line with a meaningful exit code; tracebacks only with ``--debug``."""

from dataclasses import replace

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from papermail import config
from papermail.cli import cli
from tests.cli.conftest import one_line_error

UNREACHABLE = "postgresql+psycopg://nobody:pw@127.0.0.1:1/none"


@pytest.fixture
def unreachable_database(cli_settings):
    config.use_settings(replace(cli_settings, database_url=UNREACHABLE))


@pytest.mark.parametrize("command", [["subscribers", "list"], ["stats"], ["digest", "status"]])
def test_an_unreachable_database_is_one_line(run, unreachable_database, command):
    result = run(*command)
    assert result.exit_code == 1
    message = one_line_error(result)
    assert message.startswith(
        "database at postgresql+psycopg://nobody:****@127.0.0.1:1/none is not reachable: "
    )
    assert "connection refused" in message.lower()


def test_debug_shows_the_traceback(unreachable_database):
    with pytest.raises(sa.exc.OperationalError):
        CliRunner().invoke(cli, ["--debug", "stats"], catch_exceptions=False)


def test_usage_errors_exit_2(run):
    assert run("subscribers", "add").exit_code == 2
    assert run("subscribers", "list", "--status", "sleeping").exit_code == 2
    assert run("subscribers", "import", "/no/such/file.csv").exit_code == 2
