"""The home page and its preview, security headers and cookies, static files, errors, health."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from freezegun import freeze_time

from papermail.categories import CATEGORY_GROUPS, KNOWN_CATEGORIES
from papermail.web.security import CONTENT_SECURITY_POLICY
from tests.support.web import add_run


def test_the_home_page_has_the_signup_form(client):
    response = client.get("/")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    for name in (
        "email",
        "topics",
        "keywords",
        "frequency",
        "send_weekday",
        "send_hour",
        "timezone",
        "csrf_token",
    ):
        assert f'name="{name}"' in page
    # The common categories come first, then every group.
    common = [code for code, _ in next(iter(CATEGORY_GROUPS.values()))]
    assert page.index('value="cs.AI"') < page.index('value="cs.AR"')
    assert all(f'value="{code}"' in page for code in common)
    assert all(group in page for group in list(CATEGORY_GROUPS)[1:])
    assert "<option selected>UTC</option>" in page and "<option>Europe/Berlin</option>" in page
    # Labels for every input people see; the honeypot is hidden from them and from screen readers.
    for field in ("email", "keywords", "send_weekday", "send_hour", "timezone"):
        assert f'<label for="{field}">' in page
    assert re.search(r'<div class="hp" aria-hidden="true">', page)


def test_the_preview_is_friendly_before_the_first_ranking(client):
    assert "hasn't been computed yet" in client.get("/").get_data(as_text=True)


def test_the_preview_shows_the_latest_finished_ranking(client, session):
    add_run(session, ["Old news"], age=timedelta(days=7))
    add_run(session, [f"Paper {n}" for n in range(1, 8)] + ["<img src=x onerror=alert(1)>"])
    add_run(session, ["Half-written run"], finished=False)
    page = client.get("/").get_data(as_text=True)
    shown = re.findall(r'class="paper-title" href="[^"]+">([^<]+)</a>', page)
    assert shown == ["Paper 1", "Paper 2", "Paper 3", "Paper 4", "Paper 5"]
    assert "+49 upvotes / 24h" in page
    assert "A. Lovelace, C. Babbage, G. Hopper et al." in page
    assert "Old news" not in page and "Half-written" not in page


def test_the_preview_is_kept_for_a_minute_once_there_is_one(client, session):
    with freeze_time("2026-03-02 09:00") as frozen:
        assert "Paper 1" not in client.get("/").get_data(as_text=True)
        add_run(session, ["Paper 1"])
        # The first ranking shows at once on a fresh install: an empty preview is not kept.
        assert "Paper 1" in client.get("/").get_data(as_text=True)
        add_run(session, ["Paper 2"])
        assert "Paper 2" not in client.get("/").get_data(as_text=True)
        frozen.tick(timedelta(seconds=61))
        assert "Paper 2" in client.get("/").get_data(as_text=True)


def test_titles_from_feeds_are_escaped(client, session):
    add_run(session, ["<img src=x onerror=alert(1)>"])
    page = client.get("/").get_data(as_text=True)
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<img src=x" not in page


def test_every_page_has_strict_security_headers(client):
    for path in ("/", "/confirm/bad", "/unsubscribe/bad", "/no-such-page", "/static/site.css"):
        with client.get(path) as response:
            headers = response.headers
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"
    assert "unsafe" not in CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert client.get("/").headers["Cache-Control"] == "no-store"


def test_pages_use_only_our_own_assets_and_no_inline_code(client, session):
    add_run(session, ["A paper"])
    page = client.get("/").get_data(as_text=True)
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/timezone.js" defer>']
    assert re.findall(r'<link[^>]+href="([^"]+)"', page) == ["/static/favicon.svg", "/static/site.css"]
    assert not re.search(r"<[^>]+\s(on[a-z]+|style)=", page), "inline code or style breaks the CSP"
    for asset in ("timezone.js", "site.css", "favicon.svg"):
        with client.get(f"/static/{asset}") as response:
            assert response.status_code == 200


@pytest.mark.parametrize(("scheme", "secure"), [("https", True), ("http", False)])
def test_cookies_are_httponly_and_secure_over_https(app, scheme, secure):
    client = app.test_client()
    cookie = client.get("/", base_url=f"{scheme}://localhost").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert ("Secure" in cookie) is secure
    hsts = client.get("/", base_url=f"{scheme}://localhost").headers.get("Strict-Transport-Security")
    assert (hsts is not None) is secure


def test_behind_a_proxy_https_and_the_client_address_come_from_its_headers(make_app, web_settings):
    from dataclasses import replace

    client = make_app(replace(web_settings, proxy_count=1)).test_client()
    response = client.get("/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    assert "Secure" in response.headers["Set-Cookie"]


def test_errors_have_friendly_pages(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert "Not Found" in response.get_data(as_text=True) and "Go to papermail" in response.get_data(
        as_text=True
    )
    assert client.delete("/").status_code == 405


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_the_form_offers_every_arxiv_category_once(client):
    page = client.get("/").get_data(as_text=True)
    offered = re.findall(r'name="topics" value="([^"]+)"', page)
    assert sorted(offered) == sorted(KNOWN_CATEGORIES)  # 155 categories and 11 archives
    assert 'value="astro-ph.GA"' in page and "Astrophysics of Galaxies" in page
