"""Options and arguments the admin commands share, each checked into a one-line error."""

from __future__ import annotations

import getpass
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from papermail.admin import AdminError
from papermail.cli.base import EXIT_USAGE, CommandError
from papermail.digest.period import validate_period_key
from papermail.subscribers.core import InvalidInput, normalise_email


class BadUsage(click.ClickException):
    """A malformed argument value: one line (no usage banner), exit code 2."""

    exit_code = EXIT_USAGE


def _checked(parse: Callable[[str], str], errors: type[Exception], template: str = "{error}"):
    """A Click callback running ``parse``, its ``errors`` turned into a one-line usage error."""

    def callback(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return parse(value)
        except errors as exc:
            raise BadUsage(template.format(value=value, error=exc)) from None

    return callback


# "Latest" means one thing everywhere: the period of the most recently planned digest.
LATEST_PLANNED = "the most recently planned period (the last one `digest plan` or `digest send` planned)"


def period_option_defaulting(default: str):
    """``--period P``, its help naming exactly what the command does without it."""
    return click.option(
        "--period",
        metavar="P",
        callback=_checked(validate_period_key, ValueError),
        help=f"Period key: an ISO week like 2026-W48 or a date like 2026-11-26. Default: {default}.",
    )


period_option = period_option_defaulting(LATEST_PLANNED)


def email_argument(required: bool = True):
    """The EMAIL argument, normalised the way subscribers are stored."""
    return click.argument(
        "email", required=required, callback=_checked(normalise_email, InvalidInput, "{value!r}: {error}")
    )


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn refusals from the admin layer into one-line errors: bad input exits 2, the rest 1."""
    try:
        yield
    except InvalidInput as exc:
        raise BadUsage(str(exc)) from None
    except AdminError as exc:
        raise CommandError(str(exc)) from None


def require_free_port(bind: str) -> None:
    """Fail with one line naming ``--bind`` when ``host:port`` is malformed or already taken."""
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit():
        raise BadUsage(f"--bind {bind}: expected host:port, e.g. 127.0.0.1:8000")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]"), int(port)))
        except OSError as exc:
            free = f"{host}:{int(port) + 1}"
            raise CommandError(
                f"cannot listen on {bind}: {exc.strerror or exc}; pick another with --bind {free}"
            ) from None


def cli_actor() -> str:
    """Who is running the command, for the audit log ("cli:alice")."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name for this uid (containers)
        return "cli"
