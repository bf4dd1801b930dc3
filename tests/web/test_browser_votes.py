"""A real browser opens a rendered digest, clicks "More like this", confirms, and sees the vote listed."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from papermail import clock
from papermail.db import session_scope
from papermail.db.models import Subscriber, SubscriberStatus, Vote
from tests.support.browser import SAMPLE_TITLES, SCREENSHOTS, watch_for_errors
from tests.support.web import add_run

pytestmark = pytest.mark.slow


def votes_of(settings, subscriber_id: int) -> list[tuple[str, int, str]]:
    with session_scope(settings) as session:
        query = sa.select(Vote.arxiv_id, Vote.value, Vote.source).where(Vote.subscriber_id == subscriber_id)
        return [tuple(row) for row in session.execute(query)]


def test_more_like_this_from_a_digest(browser, live_site):
    with session_scope(live_site.settings) as session:
        add_run(session, SAMPLE_TITLES)
        now = clock.now()
        reader = Subscriber(
            email="ada@example.org",
            status=SubscriberStatus.ACTIVE,
            topics=["cs.LG"],
            created_at=now,
            confirmed_at=now,
        )
        session.add(reader)
        session.flush()
        reader_id = reader.id
    digest = live_site.render_digest(reader_id)
    context = browser.new_context(viewport={"width": 375, "height": 800})
    page = context.new_page()
    errors = watch_for_errors(page)
    page.set_content(digest.html)
    expect(page.get_by_role("link", name="More like this")).to_have_count(3)
    page.get_by_role("link", name="More like this").nth(1).click()

    # The link only shows the paper and a button: a scanner following it records nothing.
    expect(page.get_by_role("heading", name="More papers like this?")).to_be_visible()
    expect(page.get_by_text(SAMPLE_TITLES[1])).to_be_visible()
    assert votes_of(live_site.settings, reader_id) == []
    page.get_by_role("button", name="More like this").click()
    expect(page.get_by_role("heading", name="Noted: more papers like this")).to_be_visible()
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "voted-375.png", full_page=True)
    [(arxiv_id, value, source)] = votes_of(live_site.settings, reader_id)
    assert (value, source) == (1, "digest")

    # The vote page mints no preferences link: it offers to mail one. The email's own link opens them.
    expect(page.get_by_role("button", name="Email me a link to my preferences")).to_be_visible()
    assert "/preferences/" not in page.content()
    # The preferences page lists the vote, with a button that forgets it.
    page.goto(re.search(r"Change topics or schedule: (\S+)", digest.text)[1])
    expect(page.locator("#interests")).to_contain_text(SAMPLE_TITLES[1])
    page.get_by_role("button", name=f"Remove {arxiv_id}").click()
    expect(page.locator("#interests")).to_contain_text(f"Forgot {arxiv_id}.")
    assert votes_of(live_site.settings, reader_id) == []
    assert errors == [], f"console errors (CSP?): {errors}"
    context.close()
