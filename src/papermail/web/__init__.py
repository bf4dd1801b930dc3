"""The web app: signup, confirmation, preferences and unsubscribe pages, and the public trending list."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from papermail.config import Settings, get_settings
from papermail.db.session import session_factory
from papermail.redaction import mask_log_handlers
from papermail.resources import templates_dir
from papermail.signup.limits import limiter_for
from papermail.web import csrf, feedback, feeds, security, views, webhooks
from papermail.web.context import PREVIEW_TTL_SECONDS, WebContext
from papermail.web.logs import describe_exception, redact
from papermail.web.probes import READINESS_TTL_SECONDS, ReadinessCache

# Every form we serve fits in a few kilobytes; anything bigger is not a person filling a form.
MAX_REQUEST_BYTES = 16 * 1024


class PapermailFlask(Flask):
    """Flask, logging crashes without the link tokens in the path or the SQL parameters."""

    def log_exception(self, exc_info) -> None:  # type: ignore[no-untyped-def]
        path = redact(request.path)
        self.logger.error("Exception on %s [%s]: %s", path, request.method, describe_exception(exc_info))


def create_app(settings: Settings | None = None, test_config: dict[str, Any] | None = None) -> Flask:
    """Build the Flask app for ``settings`` (default: from the environment).

    ``test_config`` may set ``SESSION_FACTORY`` (a sessionmaker), ``RATE_LIMITER``, ``PREVIEW_TTL``
    and ``READINESS_TTL`` (seconds) besides Flask's own keys; by default they come from ``settings``.
    """
    settings = settings or get_settings()
    web_dir = templates_dir() / "web"
    app = PapermailFlask(
        __name__,
        template_folder=str(web_dir),
        static_folder=str(web_dir / "static"),
        static_url_path="/static",
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        PAPERMAIL_SETTINGS=settings,
        MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES,
        MAX_FORM_MEMORY_SIZE=MAX_REQUEST_BYTES,
    )
    if test_config:
        app.config.update(test_config)
    app.extensions["papermail"] = WebContext(
        settings=settings,
        sessions=app.config.get("SESSION_FACTORY") or session_factory(settings),
        limiter=app.config.get("RATE_LIMITER") or limiter_for(settings),
        preview_ttl=app.config.get("PREVIEW_TTL", PREVIEW_TTL_SECONDS),
        readiness=ReadinessCache(ttl=app.config.get("READINESS_TTL", READINESS_TTL_SECONDS)),
    )
    if settings.proxy_count:
        # Behind N trusted proxies: the client address and https come from their headers.
        count = settings.proxy_count
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)  # type: ignore[method-assign]
    # Handlers that exist now (gunicorn's, or Flask's default one) never print a URL password.
    mask_log_handlers(logging.getLogger(), app.logger)
    security.init_app(app)
    app.before_request(csrf.protect)
    app.jinja_env.globals["csrf_token"] = csrf.csrf_token
    app.register_blueprint(views.blueprint)
    app.register_blueprint(feeds.blueprint)
    app.register_blueprint(feedback.blueprint)
    app.register_blueprint(webhooks.blueprint)
    views.register_error_pages(app)
    return app
