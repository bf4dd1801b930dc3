"""The web app: signup, confirmation, preferences and unsubscribe pages."""

from __future__ import annotations

from typing import Any

from flask import Flask

from papermail.config import Settings, get_settings


def create_app(settings: Settings | None = None, test_config: dict[str, Any] | None = None) -> Flask:
    """Build the Flask app for ``settings`` (default: from the environment)."""
    settings = settings or get_settings()
    app = Flask(__name__)
    app.config.update(SECRET_KEY=settings.secret_key, PAPERMAIL_SETTINGS=settings)
    if test_config:
        app.config.update(test_config)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/")
    def index() -> str:
        return "<!doctype html><title>papermail</title><h1>papermail</h1><p>Signup is coming soon.</p>"

    return app
