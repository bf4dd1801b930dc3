"""A live papermail site for browser tests: served on a local port, with helpers to watch its pages."""

from __future__ import annotations

import email
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page
from werkzeug.serving import make_server

from papermail import config
from papermail.celery_app import reset_celery
from papermail.db import session_scope
from papermail.db.models import (
    ScoringRun,
    Subscriber,
    TrendScore,
)
from papermail.digest.render import render_deliveries
from papermail.mail.message import OutgoingEmail
from papermail.signup.limits import RedisRateLimiter
from papermail.web import create_app
from tests.conftest import REDIS_URL, REPO_ROOT, RUN_ID, free_port, settings_environ, wait_for
from tests.digest.builders import World

SCREENSHOTS = REPO_ROOT / "screenshots"
SAMPLE_TITLES = [
    "Scaling Laws for Sparse Mixture-of-Experts Language Models",
    "Diffusion Policies for Dexterous Robot Manipulation",
    "A Survey of Retrieval-Augmented Generation",
    "Quantum Error Correction Below the Surface-Code Threshold",
    "Graph Neural Networks Meet Large Language Models",
]

pytestmark = pytest.mark.slow


@dataclass
class LiveSite:
    url: str
    settings: config.Settings
    environ: dict[str, str]
    outbox: Path

    def subscriber(self, address: str) -> Subscriber | None:
        with session_scope(self.settings) as session:
            return session.scalar(sa.select(Subscriber).where(Subscriber.email == address))

    def render_digest(self, subscriber_id: int) -> OutgoingEmail:
        """This week's digest for the subscriber, planned by hand and rendered by the digest code."""
        with session_scope(self.settings) as session:
            world = World(session, texts=[])  # rows for existing papers only: no texts needed
            run = session.scalar(sa.select(ScoringRun).order_by(ScoringRun.id.desc()))
            paper_ids = session.scalars(
                sa.select(TrendScore.paper_id).where(TrendScore.run_id == run.id).order_by(TrendScore.rank)
            ).all()
            reader = session.get(Subscriber, subscriber_id)
            delivery = world.delivery(reader, world.digest("2026-W48", run), paper_ids[:3])
            return render_deliveries(session, self.settings, [delivery.id])[delivery.id]

    def wait_for_mail(self, address: str) -> email.message.EmailMessage:
        def arrived():
            for path in sorted(self.outbox.glob("*.eml")):
                message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
                if message["To"] == address:
                    return message
            return None

        return wait_for(arrived, timeout=60, message=f"a confirmation email to {address}")


@pytest.fixture
def live_site(databases, tmp_path) -> Iterator[LiveSite]:
    port = free_port()
    outbox = tmp_path / "outbox"
    environ = settings_environ(
        tmp_path,
        database_url=databases("postgresql").fresh(),
        broker_url=REDIS_URL,
        mail_url=f"file://{outbox}",
        base_url=f"http://127.0.0.1:{port}",
    )
    settings = config.load_settings(environ)
    config.use_settings(settings)
    reset_celery()
    # Redis limits, as in production, but keys of this test's own (127.0.0.1 is everyone here).
    limiter = RedisRateLimiter(REDIS_URL, prefix=f"papermail-test:{RUN_ID}:{port}:")
    app = create_app(settings, {"RATE_LIMITER": limiter})
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveSite(settings.base_url, settings, environ, outbox)
    finally:
        server.shutdown()
        thread.join(10)
        for key in limiter.client.scan_iter(f"{limiter.prefix}*"):
            limiter.client.delete(key)
        config.use_settings(None)
        reset_celery()


def watch_for_errors(page: Page) -> list[str]:
    """Collect console errors (a CSP violation shows up here) and failed requests."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors
