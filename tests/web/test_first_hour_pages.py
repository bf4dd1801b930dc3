"""What a new subscriber sees: whose preferences these are, when the first digest comes, and a
header and footer that line up with the page's column at every width, light and dark.

The browser test serves the pages through the Flask test client (``page.route``), so the real
templates and stylesheet are measured by Chromium without a server.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from freezegun import freeze_time
from playwright.sync_api import Route

from papermail import clock, redaction
from papermail.db.models import Frequency, Subscriber, SubscriberStatus
from papermail.signup import confirmations
from papermail.subscribers import links
from tests.support.web import add_run, csrf_token, link_path, preferences_path

SITE = "https://papermail.test"
# Thursday 3 December 2026: a weekly Monday 08:00 reader's next digest is Monday 7 December.
THURSDAY = "2026-12-03 10:00:00"
WIDTHS = (375, 1280)
# Left and right edge of the content box (inside the padding) of header, main and footer.
CONTENT_EDGES = """() => ['.site-header', 'main', '.site-footer'].map(selector => {
    const element = document.querySelector(selector);
    const box = element.getBoundingClientRect(), style = getComputedStyle(element);
    return [box.left + parseFloat(style.paddingLeft), box.right - parseFloat(style.paddingRight)];
})"""


def _confirm_path(settings, subscriber) -> str:
    tag = links.address_tag(subscriber.email)
    return link_path(settings, links.Purpose.CONFIRM, subscriber.id, 0, tag)


@pytest.mark.parametrize(
    ("address", "shown"),
    [("ada@example.org", "a…a@example.org"), ("bo@example.org", "b…@example.org"), ("x@y.org", "x…@y.org")],
)
def test_an_address_is_shown_masked(address, shown):
    assert redaction.shown_email(address) == shown


def test_the_preferences_page_says_whose_they_are(client, people, web_settings):
    subscriber = people.add("annabelle@example.org")
    page = client.get(preferences_path(web_settings, subscriber)).get_data(as_text=True)
    assert "For <strong>a…e@example.org</strong>" in page
    assert "annabelle" not in page


@freeze_time(THURSDAY)
def test_youre_subscribed_names_the_day_and_time_of_the_first_digest(client, people, web_settings):
    def confirm(subscriber) -> str:
        path = confirmations.confirm_link(web_settings, subscriber).removeprefix(web_settings.base_url)
        return client.post(path, data={"csrf_token": csrf_token(client, path)}).get_data(as_text=True)

    def pending(email: str, **values) -> Subscriber:
        return people.add(email, SubscriberStatus.PENDING, confirmation_sent_at=clock.now(), **values)

    weekly = pending("weekly@example.org", send_weekday=0, send_hour=8, timezone="Europe/Berlin")
    assert "Your first digest arrives on Monday 7 December at 08:00 (Europe/Berlin)." in confirm(weekly)
    daily = pending("daily@example.org", frequency=Frequency.DAILY, send_hour=7, timezone="UTC")
    assert "Your first digest arrives on Friday 4 December at 07:00 (UTC)." in confirm(daily)


@pytest.mark.slow
@freeze_time(THURSDAY, tick=True)
def test_header_and_footer_line_up_with_the_column_light_and_dark(
    browser, client, people, session, web_settings, tmp_path
):
    # Screenshots go where the reviewer asked (outside the repository), else into the test's tmp.
    shots = Path(os.environ.get("PAPERMAIL_SCREENSHOTS_DIR") or tmp_path)

    def serve(route: Route) -> None:
        path = urlsplit(route.request.url)
        answer = client.get(path.path + (f"?{path.query}" if path.query else ""), buffered=True)
        route.fulfill(status=answer.status_code, headers=dict(answer.headers), body=answer.data)
        answer.close()

    def measure(pages: dict[str, str]) -> None:
        for scheme in ("light", "dark"):
            context = browser.new_context(color_scheme=scheme)
            context.route(f"{SITE}/**", serve)
            page = context.new_page()
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 900})
                for name, path in pages.items():
                    assert page.goto(SITE + path).status == 200, name
                    edges = page.evaluate(CONTENT_EDGES)
                    assert edges[0] == edges[1] == edges[2], (name, width, scheme, edges)
                    page.screenshot(path=str(shots / f"{name}-{width}-{scheme}.png"), full_page=True)
            context.close()

    measure({"trending-on-its-way": "/trending"})
    add_run(session, ["A paper people are reading", "Another one"])
    subscriber = people.add("annabelle@example.org")
    measure(
        {
            "preferences": preferences_path(web_settings, subscriber),
            "subscribed": _confirm_path(web_settings, subscriber),
            "trending": "/trending",
            "home": "/",
        }
    )
