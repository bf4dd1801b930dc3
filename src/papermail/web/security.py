"""Security headers and cookies for every response."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, Response, current_app, make_response, request
from flask.sessions import SecureCookieSessionInterface

P = ParamSpec("P")

# Only our own scripts, styles and images; no inline code, no frames, forms post only to us.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
STRICT_TRANSPORT_SECURITY = "max-age=31536000"


class SessionInterface(SecureCookieSessionInterface):
    """The signed-cookie session, marked Secure whenever the request came over https."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure or super().get_cookie_secure(app)


def add_security_headers(response: Response) -> Response:
    """``after_request`` hook adding CSP, nosniff, frame denial and cache rules."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    # Our URLs carry tokens: never leak them to the sites we link to (arXiv, GitHub).
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
    if response.mimetype == "text/html":
        # Pages hold CSRF tokens and personal links; no cache may keep them.
        headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask) -> None:
    """Install the session interface, cookie flags and header hook."""
    app.session_interface = SessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME="papermail_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    app.after_request(add_security_headers)
    app.after_request(redirect_to_own_site)


def redirect_to_own_site(response: Response) -> Response:
    """``after_request`` hook: a redirect Werkzeug built (``//`` merged, a trailing slash) goes to
    ``PAPERMAIL_BASE_URL``, never to whatever host the request named."""
    location = response.headers.get("Location")
    if location and urlsplit(location).netloc:
        parts = urlsplit(location)
        base = current_app.config["PAPERMAIL_SETTINGS"].base_url
        response.headers["Location"] = base + urlunsplit(("", "", parts.path, parts.query, parts.fragment))
    return response


def noindex(page: Any) -> Response:
    """``page`` as a response search engines must not list: it belongs to one person's link."""
    response = make_response(page)
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


def noindexed(view: Callable[P, Any]) -> Callable[P, Response]:
    """A view each of whose responses is :func:`noindex`: its pages belong to one person's link."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> Response:
        return noindex(view(*args, **kwargs))

    return wrapped
