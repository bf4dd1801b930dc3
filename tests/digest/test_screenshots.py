"""A real browser shows the digest: screenshots at desktop and phone widths, light and dark.

The PNGs land in ``screenshots/`` at the repository root (git-ignored) for a person to look at:
``digest-600.png``, ``digest-375.png`` and ``digest-375-dark.png``, beside ``digest.html``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from papermail.digest.render import render_deliveries
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

SCREENSHOT_DIR = Path(os.environ.get("PAPERMAIL_SCREENSHOT_DIR", REPO_ROOT / "screenshots"))
VIEWS = [
    (600, "light", "digest-600.png"),
    (375, "light", "digest-375.png"),
    (375, "dark", "digest-375-dark.png"),
]


@pytest.fixture(scope="module")
def database(databases):
    """The browser doesn't care which database the digest came from: render it once, from SQLite."""
    return databases("sqlite")


@pytest.fixture
def digest_html(session, settings, world) -> tuple[str, str]:
    papers = world.varied_papers(10)
    run = world.run(papers)
    reader = world.subscriber("ann@example.org", topics=["cs.CL", "cs.LG", "cs.RO"], keywords=["diffusion"])
    delivery = world.delivery(reader, world.digest("2026-W48", run), papers)
    email = render_deliveries(session, settings, [delivery.id])[delivery.id]
    return email.html, papers[0].title


def test_digest_looks_right_in_chromium_at_600_and_375_px(digest_html, browser):
    html, first_title = digest_html
    SCREENSHOT_DIR.mkdir(exist_ok=True)
    (SCREENSHOT_DIR / "digest.html").write_text(html)  # to open in a browser or a mail client
    for width, scheme, filename in VIEWS:
        page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
        requests: list[str] = []
        page.route("**/*", lambda route, found=requests: (found.append(route.request.url), route.abort()))
        page.set_content(html, wait_until="load")
        assert requests == [], "the digest must need nothing from the network (images off)"
        assert page.evaluate("document.documentElement.scrollWidth") <= width, "horizontal scroll"
        assert page.get_by_role("link", name=first_title).is_visible()
        assert page.get_by_role("link", name="Unsubscribe").is_visible()
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == ("rgb(13, 17, 23)" if scheme == "dark" else "rgb(243, 244, 246)")
        page.screenshot(path=SCREENSHOT_DIR / filename, full_page=True)
        page.close()
    for _width, _scheme, filename in VIEWS:
        assert (SCREENSHOT_DIR / filename).stat().st_size > 10_000
