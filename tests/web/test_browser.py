"""A real browser (Debian's Chromium via Playwright) signs up, confirms, edits and unsubscribes.

The app is served on a local port by werkzeug, on PostgreSQL with a Redis broker; a real worker
process sends the confirmation email into a file outbox, where the test reads it like a person; the
unsubscribe link comes from a digest rendered by the digest code (``render_deliveries``).
Chromium must be installed (``scripts/services`` does it); the test fails, never skips, without it.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from papermail.db import session_scope
from papermail.db.models import Frequency, SubscriberStatus
from tests.conftest import wait_for
from tests.support.browser import SAMPLE_TITLES, SCREENSHOTS, watch_for_errors
from tests.support.web import add_run


def test_sign_up_confirm_change_preferences_and_unsubscribe(browser, live_site, worker_factory):
    worker_factory(live_site.environ)  # sends the confirmation email
    context = browser.new_context(timezone_id="Asia/Tokyo", viewport={"width": 375, "height": 800})
    with session_scope(live_site.settings) as session:
        add_run(session, SAMPLE_TITLES)
    page = context.new_page()
    errors = watch_for_errors(page)
    page.goto(live_site.url + "/")
    expect(page.locator(".paper-title")).to_have_count(5)
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "signup-375.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=SCREENSHOTS / "signup-1280.png", full_page=True)
    page.set_viewport_size({"width": 375, "height": 800})

    # The timezone is guessed by our script; everything else is chosen by hand, with the keyboard too.
    expect(page.locator("#timezone")).to_have_value("Asia/Tokyo")
    page.get_by_label("Email address").fill("Ada.Lovelace@Example.org")
    page.get_by_label("Machine Learning cs.LG").check()
    page.get_by_label("Keywords").fill("diffusion, graphs")
    page.get_by_label("Hour").select_option("7")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "check-inbox-375.png", full_page=True)

    # The confirmation email, as the worker wrote it to the outbox.
    message = live_site.wait_for_mail("ada.lovelace@example.org")
    text = message.get_body(("plain",)).get_content()
    confirm_url = re.search(r"http://127\.0\.0\.1:\d+/confirm/\S+", text)[0]
    page.goto(confirm_url)
    assert live_site.subscriber("ada.lovelace@example.org").status == SubscriberStatus.PENDING
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", name="You're subscribed")).to_be_visible()
    subscriber = live_site.subscriber("ada.lovelace@example.org")
    assert subscriber.status == SubscriberStatus.ACTIVE
    assert (subscriber.topics, subscriber.timezone, subscriber.send_hour) == (["cs.LG"], "Asia/Tokyo", 7)

    page.get_by_role("link", name="Change your preferences").click()
    expect(page.get_by_label("Machine Learning cs.LG")).to_be_checked()
    page.get_by_text("Quantum Physics and Nonlinear Sciences").click()  # a closed group opens
    page.get_by_label("Quantum Physics quant-ph").check()
    page.get_by_label("Daily").check()
    page.get_by_role("button", name="Save preferences").click()
    expect(page.get_by_role("status")).to_contain_text("Saved")
    page.screenshot(path=SCREENSHOTS / "preferences-375.png", full_page=True)
    subscriber = live_site.subscriber("ada.lovelace@example.org")
    assert subscriber.topics == ["cs.LG", "quant-ph"]
    assert subscriber.frequency == Frequency.DAILY

    # A real digest for this subscriber, rendered as the workers would: follow its List-Unsubscribe link.
    digest = live_site.render_digest(subscriber.id)
    unsubscribe_url = re.fullmatch(
        r"<(http://127\.0\.0\.1:\d+/unsubscribe/\S+)>", digest.headers["List-Unsubscribe"]
    )[1]
    assert unsubscribe_url in digest.text
    page.goto(unsubscribe_url)
    assert live_site.subscriber("ada.lovelace@example.org").status == SubscriberStatus.ACTIVE
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", name="You're unsubscribed")).to_be_visible()
    assert live_site.subscriber("ada.lovelace@example.org").status == SubscriberStatus.UNSUBSCRIBED
    assert errors == [], f"console errors (CSP?): {errors}"
    context.close()


def test_signing_up_works_without_javascript(browser, live_site, worker_factory):
    worker_factory(live_site.environ)  # decides what the signup means (papermail.process_signup)
    context = browser.new_context(java_script_enabled=False, viewport={"width": 320, "height": 700})
    page = context.new_page()
    page.goto(live_site.url + "/")
    expect(page.locator("#timezone")).to_have_value("UTC")
    page.get_by_label("Email address").fill("grace@example.org")
    page.get_by_role("button", name="Subscribe").click()
    # Nothing chosen yet: the form says so and keeps the address.
    expect(page.get_by_role("alert")).to_contain_text("Choose at least one topic or keyword")
    expect(page.get_by_label("Email address")).to_have_value("grace@example.org")
    page.screenshot(path=SCREENSHOTS / "signup-error-320.png")
    page.get_by_label("Keywords").fill("compilers")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    grace = wait_for(lambda: live_site.subscriber("grace@example.org"), message="the worker to store grace")
    assert grace.keywords == ["compilers"]
    context.close()
