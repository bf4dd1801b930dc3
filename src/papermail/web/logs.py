"""Logging without secrets: link tokens are replaced before a URL reaches any log line."""

from __future__ import annotations

import re
import traceback
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from gunicorn.glogging import Logger

from papermail.config import mask_log_handlers

# /confirm/<token>, /preferences/<token>, /unsubscribe/<token>, /digest/<token>: the token is a password.
_TOKEN_PATH = re.compile(r"(/(?:confirm|preferences|unsubscribe|digest)/)[^\s/?]+")


def redact(text: str) -> str:
    """Replace link tokens in a request line or path with ``…``."""
    return _TOKEN_PATH.sub(r"\1…", text)


class RedactingLogger(Logger):
    """Gunicorn's logger, with tokens removed from every atom (request line, path, referrer…)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        mask_log_handlers(self.error_log, self.access_log)

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        return {name: redact(value) if isinstance(value, str) else value for name, value in atoms.items()}


def describe_exception(exc_info: tuple[type[BaseException], BaseException, TracebackType | None]) -> str:
    """The exception's type and stack, without its message (which may quote SQL parameters)."""
    exc_type, _exc, tb = exc_info
    return f"{exc_type.__name__}\n{''.join(traceback.format_tb(tb))}"


def describe_error(exc: BaseException) -> str:
    """An exception's type, and its first line unless it may quote SQL parameters (addresses)."""
    if isinstance(exc, sa.exc.StatementError):
        return f"{type(exc).__name__} ({type(exc.orig).__name__})"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
