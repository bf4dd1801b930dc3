"""What every command shares: one-line errors with meaningful exit codes, and a session."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail.config import ConfigError, Settings, get_settings
from papermail.db import migrate, session_scope
from papermail.db.session import unreachable_database_message
from papermail.redaction import mask_secrets

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CommandError(click.ClickException):
    """The operation failed; printed as one line, exit code 1."""

    exit_code = EXIT_FAILED


class SettingsError(click.ClickException):
    """A bad or missing setting; printed as one line naming the variable, exit code 2."""

    exit_code = EXIT_USAGE


def settings_or_exit() -> Settings:
    """The settings, or a one-line error naming the bad variable."""
    try:
        return get_settings()
    except ConfigError as exc:
        raise SettingsError(str(exc)) from None


@contextmanager
def cli_session() -> Iterator[Session]:
    """A committing session, turning an unreachable database into one clear line."""
    with session_scope(settings_or_exit()) as session:
        yield session


EMPTY_DATABASE = "the database has no tables yet: run `papermail db upgrade` (`papermail up` does it too)"


def _no_tables(exc: sa.exc.DBAPIError) -> bool:
    """True when a query failed because the schema was never created (SQLite or PostgreSQL)."""
    text = str(exc.orig or exc)
    return "no such table" in text or ("relation" in text and "does not exist" in text)


def require_schema(settings: Settings) -> None:
    """Fail with the one line naming ``db upgrade`` when the database was never migrated."""
    if migrate.current_revision(settings) is None:
        raise CommandError(EMPTY_DATABASE)


def _unreachable_database(exc: sa.exc.OperationalError) -> CommandError:
    return CommandError(unreachable_database_message(exc, get_settings().database_url))


class JsonError(click.ClickException):
    """An error of a ``--json`` command: ``{"error": "..."}`` on stderr, with the same exit code."""

    def __init__(self, original: click.ClickException) -> None:
        super().__init__(original.format_message())
        self.exit_code = original.exit_code

    def show(self, file=None) -> None:
        click.echo(json.dumps({"error": self.message}, ensure_ascii=False), err=True)


JSON_FLAG = "--json"


class PapermailGroup(click.Group):
    """A group whose unexpected errors become one line (exit 1) unless ``--debug`` is given.

    When the command line asks for ``--json``, that line is a JSON object, so scripts parse every
    answer, failures included.
    """

    def make_context(self, info_name, args, parent=None, **extra):
        wants_json = JSON_FLAG in args[: args.index("--")] if "--" in args else JSON_FLAG in args
        ctx = super().make_context(info_name, args, parent, **extra)
        ctx.meta[JSON_FLAG] = wants_json
        return ctx

    def invoke(self, ctx: click.Context):
        try:
            return self._invoke_one_line(ctx)
        except click.ClickException as exc:
            if ctx.meta.get(JSON_FLAG):
                raise JsonError(exc) from None
            raise

    def _invoke_one_line(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            # The reader went away (`papermail config | head`): nothing more to say, to anyone.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(EXIT_OK)
        except ConfigError as exc:
            raise SettingsError(str(exc)) from None
        except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            if _no_tables(exc):
                raise CommandError(EMPTY_DATABASE) from exc
            if isinstance(exc, sa.exc.ProgrammingError):
                raise CommandError(f"{exc.orig or exc} (run with --debug for the traceback)") from exc
            raise _unreachable_database(exc) from exc
        except Exception as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            raise CommandError(f"{mask_secrets(str(exc))} (run with --debug for the traceback)") from exc
