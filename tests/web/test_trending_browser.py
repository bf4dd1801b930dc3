"""A real browser reads /trending and a digest's "View in browser" page, at phone and desktop widths.

The PNGs land in ``screenshots/`` (git-ignored) for a person to look at: ``trending-375.png``,
``trending-1280.png``, ``trending-375-dark.png`` and ``digest-view-375.png``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from werkzeug.serving import make_server

from papermail import config
from papermail.db import session_scope
from papermail.db.models import DeliveryStatus, TrendScore
from papermail.digest.render import render_deliveries
from papermail.signup.limits import DatabaseRateLimiter
from papermail.web import create_app
from tests.conftest import free_port, make_settings
from tests.digest.builders import World
from tests.support.browser import SCREENSHOTS, watch_for_errors
from tests.support.web import add_run

pytestmark = pytest.mark.slow

TITLES = [
    "Scaling Laws for Sparse Mixture-of-Experts Language Models Trained on Very Long Documents",
    "Diffusion Policies for Dexterous Robot Manipulation",
    "A Survey of Retrieval-Augmented Generation",
    "Quantum Error Correction Below the Surface-Code Threshold",
    "Graph Neural Networks Meet Large Language Models",
] * 6


@dataclass
class Site:
    url: str
    settings: config.Settings


@pytest.fixture
def site(databases, tmp_path) -> Iterator[Site]:
    port = free_port()
    settings = make_settings(
        tmp_path, database_url=databases("sqlite").fresh(), base_url=f"http://127.0.0.1:{port}"
    )
    app = create_app(settings, {"RATE_LIMITER": DatabaseRateLimiter()})
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(settings.base_url, settings)
    finally:
        server.shutdown()
        thread.join(10)


def test_the_trending_page_reads_well_at_375_and_1280_px(browser, site):
    with session_scope(site.settings) as session:
        add_run(session, [f"{title} ({n})" for n, title in enumerate(TITLES, start=1)])
    SCREENSHOTS.mkdir(exist_ok=True)
    for width, scheme, filename in [
        (375, "light", "trending-375.png"),
        (1280, "light", "trending-1280.png"),
        (375, "dark", "trending-375-dark.png"),
    ]:
        page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
        errors = watch_for_errors(page)
        page.goto(site.url + "/")
        page.get_by_role("link", name="See all trending papers").click()
        expect(page.get_by_role("heading", name="Trending this week")).to_be_visible()
        expect(page.locator(".ranking .paper")).to_have_count(25)
        assert page.evaluate("document.documentElement.scrollWidth") <= width, "horizontal scroll"
        first = page.get_by_role("link", name=TITLES[0] + " (1)")
        assert first.get_attribute("href").startswith("https://arxiv.org/abs/2601.")
        expect(page.locator(".evidence").first).to_have_text("+49 upvotes / 24h")
        page.screenshot(path=SCREENSHOTS / filename, full_page=True)
        page.get_by_role("link", name="Next").click()
        expect(page.locator(".ranking .paper")).to_have_count(5)
        expect(page.get_by_text("Page 2 of 2")).to_be_visible()
        assert errors == [], f"console errors (CSP?): {errors}"
        page.close()


def test_view_in_browser_opens_the_delivered_digest(browser, site):
    with session_scope(site.settings) as session:
        world = World(session, texts=[])  # the papers are add_run's: no texts needed
        run = add_run(session, TITLES[:5])
        ranked = session.scalars(
            sa.select(TrendScore.paper_id).where(TrendScore.run_id == run.id).order_by(TrendScore.rank)
        ).all()
        reader = world.subscriber("ann@example.org")
        digest = world.digest("2026-W49", run)
        delivery = world.delivery(reader, digest, ranked[:3], status=DeliveryStatus.SENT)
        email = render_deliveries(session, site.settings, [delivery.id])[delivery.id]
    page = browser.new_page(viewport={"width": 375, "height": 800})
    errors = watch_for_errors(page)
    page.set_content(email.html)
    with page.expect_navigation():
        page.get_by_role("link", name="View in browser").click()
    expect(page.get_by_role("heading", name="Week 49, 2026")).to_be_visible()
    expect(page.locator(".paper-title")).to_have_text(TITLES[:3])
    # A forwarded view link is no key to the account: the owner asks for a link by email instead.
    expect(page.get_by_role("link", name="Unsubscribe")).to_have_count(0)
    expect(page.get_by_role("button", name="email me a link to my preferences")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375, "horizontal scroll"
    page.screenshot(path=SCREENSHOTS / "digest-view-375.png", full_page=True)
    page.get_by_role("link", name="Everything trending in your topics").click()
    expect(page.get_by_role("heading", name="Trending this week in cs.LG")).to_be_visible()
    assert errors == [], f"console errors (CSP?): {errors}"
    page.close()
