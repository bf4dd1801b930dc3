"""CSRF protection for every form: a signed token tied to a random value in the session cookie.

Every POST must carry ``csrf_token`` unless its view is marked :func:`csrf_exempt`; only the
one-click unsubscribe endpoint is (RFC 8058: mail providers POST it with no cookies or token).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from flask import current_app, request, session
from itsdangerous import BadData, URLSafeTimedSerializer
from werkzeug.exceptions import BadRequest

FIELD_NAME = "csrf_token"
SESSION_KEY = "csrf"
# A form left open longer than this must be reloaded: long enough for a slow visitor.
TOKEN_MAX_AGE = timedelta(hours=12)
_EXEMPT_ATTRIBUTE = "_papermail_csrf_exempt"

F = TypeVar("F", bound=Callable)


class CSRFError(BadRequest):
    description = (
        "This form has expired or was not sent from papermail. Please reload the page and try again."
    )


def csrf_exempt(view: F) -> F:
    """Mark a view as accepting POSTs without a CSRF token."""
    setattr(view, _EXEMPT_ATTRIBUTE, True)
    return view


def is_exempt(endpoint: str | None) -> bool:
    """True if the view behind ``endpoint`` accepts POSTs without a token."""
    view = current_app.view_functions.get(endpoint or "")
    return bool(getattr(view, _EXEMPT_ATTRIBUTE, False))


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="papermail.csrf")


def csrf_token() -> str:
    """The token to put in a form (creates the session's random value on first use)."""
    nonce = session.get(SESSION_KEY)
    if not nonce:
        nonce = session[SESSION_KEY] = secrets.token_urlsafe(32)
    return _serializer().dumps(nonce)


def protect() -> None:
    """``before_request`` hook: refuse a POST whose token is missing, forged or stale."""
    if request.method != "POST" or is_exempt(request.endpoint):
        return
    nonce = session.get(SESSION_KEY)
    try:
        value = _serializer().loads(request.form.get(FIELD_NAME, ""), max_age=TOKEN_MAX_AGE.total_seconds())
    except BadData:
        raise CSRFError() from None
    if not nonce or not isinstance(value, str) or not hmac.compare_digest(value, nonce):
        raise CSRFError()
