"""Every digest links to itself as a web page: the same papers, signed, noindex, gone after erasure."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from freezegun import freeze_time

from papermail import clock, tokens
from papermail.admin.subscribers import erase_subscriber
from papermail.db.models import DeliveryStatus
from papermail.digest.render import render_deliveries
from papermail.web.logs import redact
from tests.digest.builders import World, seed_texts

VIEW_LINK = re.compile(r'<a href="(https://papermail\.test/digest/[^"]+)">View in browser</a>')
TITLE = re.compile(r'class="paper-title" href="([^"]+)">([^<]+)</a>')
EVIDENCE = re.compile(r'class="evidence">([^<]+)<')


@pytest.fixture
def world(session, shared_fixtures) -> World:
    return World(session, seed_texts(shared_fixtures))


@pytest.fixture
def sent(session, web_settings, world):
    """A delivered digest of 5 of 8 ranked papers (in a different order), and its email."""
    papers = world.varied_papers(8)
    run = world.run(papers)
    reader = world.subscriber("ann@example.org", topics=["cs.LG", "cs.CL"])
    chosen = [papers[4], papers[0], papers[6], papers[2], papers[7]]
    delivery = world.delivery(reader, world.digest("2026-W49", run), chosen, status=DeliveryStatus.SENT)
    email = render_deliveries(session, web_settings, [delivery.id])[delivery.id]
    return reader, delivery, chosen, email


def view_path(email) -> str:
    url = html.unescape(VIEW_LINK.search(email.html)[1])
    assert f"View in browser: {url}\n" in email.text
    return url.removeprefix("https://papermail.test")


def test_the_page_shows_exactly_the_delivered_papers_with_their_evidence(client, session, world, sent):
    _reader, _delivery, chosen, email = sent
    # A newer run ranks everything differently: the page still shows what was mailed.
    world.run(list(reversed(world.varied_papers(3))), evidence=["newer"] * 3)
    response = client.get(view_path(email))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    shown = [(html.unescape(url), html.unescape(title)) for url, title in TITLE.findall(page)]
    assert shown == [(paper.abs_url, " ".join(paper.title.split())) for paper in chosen]
    mailed_evidence = re.findall(r"^Trending: (.+)$", email.text, re.M)
    assert [html.unescape(e) for e in EVIDENCE.findall(page)] == mailed_evidence
    assert len(mailed_evidence) == 5 and "newer" not in page
    assert "Week 49, 2026" in page


def test_the_page_is_noindex_untracked_and_has_the_emails_own_links(client, web_settings, sent):
    reader, _delivery, _chosen, email = sent
    response = client.get(view_path(email))
    page = response.get_data(as_text=True)
    assert response.headers["X-Robots-Tag"] == "noindex, nofollow"
    assert '<meta name="robots" content="noindex, nofollow">' in page
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    assert "<img" not in page and "utm_" not in page
    # The same unsubscribe and preferences pages as the email's links, for the same subscriber.
    for purpose, name in [
        (tokens.Purpose.UNSUBSCRIBE, "Unsubscribe"),
        (tokens.Purpose.PREFERENCES, "Change topics"),
    ]:
        path = html.unescape(re.search(rf'<a href="(/{tokens.PATHS[purpose]}/[^"]+)">{name}', page)[1])
        token = path.rsplit("/", 1)[1]
        assert tokens.read_token(web_settings, purpose, token)[0] == reader.id
        assert client.get(path).status_code == 200
    assert 'href="/trending?topic=cs.CL&amp;topic=cs.LG"' in page


def test_the_email_footer_links_the_public_list_for_the_subscribers_topics(sent):
    _reader, _delivery, _chosen, email = sent
    assert 'href="https://papermail.test/trending?topic=cs.CL&amp;topic=cs.LG"' in email.html
    assert (
        "Everything trending in your topics: https://papermail.test/trending?topic=cs.CL&topic=cs.LG"
        in email.text
    )


def test_a_tampered_or_foreign_token_is_refused(client, web_settings, world, sent):
    reader, delivery, _chosen, email = sent
    path = view_path(email)
    token = path.rsplit("/", 1)[1]
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    other = world.subscriber("bob@example.org")

    def token_for(purpose: tokens.Purpose, *payload: int) -> str:
        return tokens.make_token(web_settings, purpose, *payload)

    cases = {
        "tampered": f"/digest/{tampered}",
        "unsubscribe token": f"/digest/{token_for(tokens.Purpose.UNSUBSCRIBE, reader.id)}",
        "someone else's id": f"/digest/{token_for(tokens.Purpose.VIEW, other.id, delivery.id)}",
        "no delivery": f"/digest/{token_for(tokens.Purpose.VIEW, reader.id)}",
        "view token as unsubscribe": f"/unsubscribe/{token}",
    }
    for what, bad in cases.items():
        response = client.get(bad)
        assert response.status_code == 400, what
        assert "ann@example.org" not in response.get_data(as_text=True)


def test_the_link_lives_as_long_as_the_unsubscribe_link(client, web_settings, sent):
    reader, _delivery, _chosen, email = sent
    path = view_path(email)
    unsubscribe = tokens.make_token(web_settings, tokens.Purpose.UNSUBSCRIBE, reader.id)
    assert tokens.MAX_AGE[tokens.Purpose.VIEW] == tokens.MAX_AGE[tokens.Purpose.UNSUBSCRIBE]
    for days in (364, 366, 3650):
        with freeze_time(clock.now() + timedelta(days=days)):
            both = (client.get(path).status_code, client.get(f"/unsubscribe/{unsubscribe}").status_code)
            assert both in ((200, 200), (400, 400)), f"after {days} days: {both}"


def test_the_page_is_gone_once_the_subscriber_is_erased(client, session, sent):
    reader, _delivery, _chosen, email = sent
    path = view_path(email)
    assert client.get(path).status_code == 200
    erase_subscriber(session, reader.email, actor="test", reason="GDPR request")
    session.flush()
    response = client.get(path)
    assert response.status_code == 400
    assert response.headers["X-Robots-Tag"] == "noindex, nofollow"


def test_the_access_log_never_shows_a_view_token():
    assert redact("GET /digest/WzEsMl0.abc.def HTTP/1.1") == "GET /digest/… HTTP/1.1"
