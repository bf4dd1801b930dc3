"""Logging without secrets: link tokens are replaced before a URL reaches any log line."""

from __future__ import annotations

import re
import traceback
from types import TracebackType
from typing import Any
from urllib.parse import unquote

import sqlalchemy as sa
from gunicorn.glogging import Logger

from papermail.redaction import mask_log_handlers

# /confirm/<token>, /preferences/<token>, /unsubscribe/<token>, /digest/<token>, /vote/<token>:
# the token is a password. Matched on the path as the app routes it: percent-decoded, runs of
# slashes merged, in any case (``/%64igest//<token>`` is served as ``/digest/<token>``).
_TOKEN_PATH = re.compile(r"(?i)(/(?:confirm|preferences|unsubscribe|digest|vote)/)[^\s/?]+")
_SLASHES = re.compile(r"/{2,}")
_WORD = re.compile(r"\S+")


def redact(text: str) -> str:
    """Replace link tokens in a request line, path or URL with ``…``."""
    return _WORD.sub(lambda word: _redact_word(word[0]), text)


def _redact_word(word: str) -> str:
    if "/" not in word and "%" not in word:
        return word
    routed = _SLASHES.sub("/", unquote(word).replace("://", ":\0"))
    if not _TOKEN_PATH.search(routed):
        return word
    # Shown as routed, so no encoding of the token survives either.
    return _TOKEN_PATH.sub(r"\1…", routed).replace(":\0", "://")


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
