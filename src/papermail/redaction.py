"""How secrets and addresses appear in logs and output: masked, so what is printed can be shared.

Secrets are URL passwords and secret-named query parameters (``password``, ``token``, ``key`` …):
:func:`mask_secrets` replaces them by ``****`` in any text, and :class:`SecretMaskingFilter` does the
same for every log line and traceback once :func:`mask_log_handlers` installed it. Addresses are
shortened: :func:`mask_email` for log lines, :func:`shown_email` for a page whoever holds its link
may see, and :func:`email_hash` where only "the same address?" matters (suppressions).
"""

from __future__ import annotations

import hashlib
import logging
import re

# A URL in a text: its scheme, then everything up to white space or a quote.
_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^\s'\"<>]+)")
# A query parameter named like a secret (``password``, ``api_key``, ``access_token``, ``sig`` …).
_SECRET_PARAM = re.compile(
    r"(?i)([?&;][^=&;#\s]*(?:passw|pass\b|pwd|token|key|secret|signature|sig\b)[^=&;#\s]*=)[^&;#\s]*"
)
MASK = "****"
MIN_MASKED_PIECE = 3  # shorter pieces of a secret would mask common text, and reveal little
_MASKED_PARAM = rf"\1{MASK}"


def mask_secrets(text: str, *urls: str) -> str:
    """``text`` with every URL's userinfo and secret-named query parameters replaced by ``****``.

    The userinfo runs to the last ``@`` before the query, as a URL parser reads it, so a password
    holding a stray ``@`` is hidden whole; ``urls`` (values as given, which may hold characters a
    URL should have escaped, even spaces) are masked wherever they occur first.
    """
    for url in urls:
        if url:
            text = text.replace(url, _mask_url(url))
            # A driver that split the URL its own way may quote any piece of a secret.
            for piece in sorted(_secret_pieces(url), key=len, reverse=True):
                text = text.replace(piece, MASK)
    return _URL.sub(lambda m: _mask_url(m[0]), text)


def _secret_pieces(url: str) -> set[str]:
    """The password of ``url``, its parts between ``@``s, and its secret-named parameters' values."""
    head, _mark, query = _split_query(url.partition("://")[2])
    password = head.rpartition("@")[0].partition(":")[2]
    values = [m[0].partition("=")[2] for m in _SECRET_PARAM.finditer("?" + query)]
    return {p for p in (password, *password.split("@"), *values) if len(p) >= MIN_MASKED_PIECE}


def _mask_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    head, mark, query = _split_query(rest)
    userinfo, at, host = head.rpartition("@")
    if (
        at
        and userinfo != MASK
        and not userinfo.endswith(f":{MASK}")
        and (":" in userinfo or "/" not in userinfo)
    ):
        user, colon, _password = userinfo.partition(":")
        head = f"{user}:{MASK}@{host}" if colon else f"{MASK}@{host}"
    query = _SECRET_PARAM.sub(_MASKED_PARAM, mark + query)[len(mark) :]
    return f"{scheme}://{head}{mark}{query}"


def _split_query(rest: str) -> tuple[str, str, str]:
    """``rest`` before its query or fragment, the ``?``/``#`` mark, and what follows it."""
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=-1)
    return (rest, "", "") if cut < 0 else (rest[:cut], rest[cut], rest[cut + 1 :])


class SecretMaskingFilter(logging.Filter):
    """A handler filter that hides URL passwords in every log line (message and traceback)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        return True


def mask_log_handlers(*loggers: logging.Logger) -> None:
    """Install :class:`SecretMaskingFilter` on the handlers of ``loggers`` (default: the root)."""
    for logger in loggers or (logging.getLogger(),):
        for handler in logger.handlers:
            if not any(isinstance(f, SecretMaskingFilter) for f in handler.filters):
                handler.addFilter(SecretMaskingFilter())


def mask_email(email: str) -> str:
    """An address fit for a log line: ``a***@example.org``."""
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}***@{domain}"


def shown_email(email: str) -> str:
    """An address a page may show to whoever holds its link: ``a…e@example.org``."""
    local, _, domain = email.rpartition("@")
    ends = local[:1] + ("…" + local[-1] if len(local) > 2 else "…")
    return f"{ends}@{domain}"


def email_hash(email: str) -> str:
    """The SHA-256 of a normalised address: what a suppression keeps after the address is erased."""
    return hashlib.sha256(email.encode()).hexdigest()
