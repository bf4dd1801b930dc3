"""Every digest links to itself as a web page: the same papers, signed, noindex, gone after erasure."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from freezegun import freeze_time
from itsdangerous.encoding import base64_decode, base64_encode

from papermail import clock, config, task_names
from papermail.admin.subscribers import erase_subscriber
from papermail.db.models import DeliveryStatus
from papermail.digest.render import render_deliveries
from papermail.mail.backends import MEMORY_OUTBOX
from papermail.subscribers import preferences
from papermail.subscribers.links import (
    BadToken,
    CompactTokens,
    DeliveryTokens,
    Purpose,
    address_tag,
    make_token,
)
from papermail.subscribers.unsubscribe import unsubscribe
from papermail.subscribers.votes import votes_of
from papermail.web.logs import redact
from tests.digest.builders import World, seed_texts
from tests.support.web import csrf_token

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
    _reader, _delivery, _chosen, email = sent
    response = client.get(view_path(email))
    page = response.get_data(as_text=True)
    assert response.headers["X-Robots-Tag"] == "noindex, nofollow"
    assert '<meta name="robots" content="noindex, nofollow">' in page
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    assert "<img" not in page and "utm_" not in page
    # View links get forwarded: the page is no key to the account.
    assert "/preferences/" not in page and "/unsubscribe/" not in page
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

    def token_for(purpose: Purpose, *payload: int) -> str:
        return make_token(web_settings, purpose, *payload)

    cases = {
        "tampered": f"/digest/{tampered}",
        "unsubscribe token": f"/digest/{token_for(Purpose.UNSUBSCRIBE, reader.id)}",
        "someone else's id": f"/digest/{token_for(Purpose.VIEW, other.id, delivery.id)}",
        "another address": "/digest/"
        + CompactTokens(web_settings, Purpose.VIEW).make(
            reader.id, delivery.id, address_tag("eve@example.org")
        ),
        "no delivery": f"/digest/{token_for(Purpose.VIEW, reader.id)}",
        "view token as unsubscribe": f"/unsubscribe/{token}",
    }
    for what, bad in cases.items():
        response = client.get(bad)
        assert response.status_code == 400, what
        assert "ann@example.org" not in response.get_data(as_text=True)


def test_the_link_lives_a_year_and_dies_with_the_address(client, session, sent):
    reader, _delivery, _chosen, email = sent
    path = view_path(email)
    for days, code in ((364, 200), (366, 400)):
        with freeze_time(clock.now() + timedelta(days=days)):
            assert client.get(path).status_code == code, f"after {days} days"
    reader.email = "ann.new@example.org"
    session.flush()
    assert client.get(path).status_code == 400


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


VOTE_LINK = re.compile(r'href="https://papermail\.test(/vote/([^"/]+)/(\d+)/(more|less))"')


def test_one_token_signs_the_view_link_and_every_vote_by_place(client, session, world, sent):
    reader, _delivery, chosen, email = sent
    links = VOTE_LINK.findall(email.html)
    assert len(links) == 2 * len(chosen)
    assert {token for _path, token, _n, _way in links} == {view_path(email).rsplit("/", 1)[1]}
    assert [(n, way) for _p, _t, n, way in links[:4]] == [
        ("1", "more"),
        ("1", "less"),
        ("2", "more"),
        ("2", "less"),
    ]
    third_less = links[5][0]
    assert chosen[2].title.split()[0] in client.get(third_less).get_data(as_text=True)
    assert client.post(third_less).status_code == 200
    assert [(v.arxiv_id, v.value) for v in votes_of(session, reader.id)] == [(chosen[2].arxiv_id, -1)]
    token = links[0][1]
    # The place is checked against the delivery's frozen papers; the way is one of two.
    for bad in (f"/vote/{token}/0/more", f"/vote/{token}/6/more", f"/vote/{token}/1/maybe"):
        assert client.post(bad).status_code == 400, bad


def test_links_in_the_longer_token_of_before_keep_working(client, web_settings, session, sent):
    reader, delivery, chosen, _email = sent
    before = CompactTokens(web_settings, Purpose.VIEW).make(reader.id, delivery.id, address_tag(reader.email))
    assert chosen[1].title.split()[0] in client.get(f"/digest/{before}").get_data(as_text=True)
    assert client.post(f"/vote/{before}/2/more").status_code == 200
    assert [(v.arxiv_id, v.value) for v in votes_of(session, reader.id)] == [(chosen[1].arxiv_id, 1)]


def test_the_delivery_token_is_short_and_names_no_other_delivery(client, web_settings, world, sent):
    reader, delivery, chosen, email = sent
    token = view_path(email).rsplit("/", 1)[1]
    assert len(token) <= 32 and DeliveryTokens.is_one(token)
    another = world.delivery(reader, world.digest("2026-W50", world.run(chosen)), chosen)
    signed = DeliveryTokens(web_settings)
    assert signed.delivery_id(token) == delivery.id
    # The same token with the other delivery's id in it: the signature no longer matches.
    data = base64_decode(token)
    moved = base64_encode(data[:4] + another.id.to_bytes(len(data) - 20) + data[-16:]).decode()
    assert signed.delivery_id(moved) == another.id
    assert client.get(f"/digest/{moved}").status_code == 400
    assert client.get(f"/digest/{signed.make(another.id, reader.email)}").status_code == 200


def test_delivery_tokens_survive_a_key_rotation(web_settings):
    before = DeliveryTokens(web_settings).make(42, "ann@example.org")
    rotated = replace(
        web_settings, secret_key="a-new-key-" + "x" * 30, old_secret_keys=(web_settings.secret_key,)
    )
    DeliveryTokens(rotated).check(before, "ann@example.org")
    with pytest.raises(BadToken):
        DeliveryTokens(rotated).check(before, "eve@example.org")
    with pytest.raises(BadToken):
        DeliveryTokens(replace(rotated, old_secret_keys=())).check(before, "ann@example.org")


def test_the_page_has_the_emails_vote_buttons(client, session, sent):
    reader, _delivery, chosen, email = sent
    page = client.get(view_path(email)).get_data(as_text=True)
    actions = [html.unescape(a) for a in re.findall(r'<form method="post" action="(/vote/[^"]+)"', page)]
    assert [a.rsplit("/", 2)[1:] for a in actions[:2]] == [["1", "more"], ["1", "less"]]
    assert len(actions) == 2 * len(chosen)
    assert client.post(actions[2]).status_code == 200  # the second paper, More like this
    assert [(v.arxiv_id, v.value) for v in votes_of(session, reader.id)] == [(chosen[1].arxiv_id, 1)]


def test_pages_of_forwarded_links_mint_no_keys_and_mail_the_owner_one(
    make_app, session, sessions, web_settings, sent, enqueued
):
    reader, _delivery, _chosen, email = sent
    client = make_app().test_client()
    path = view_path(email)
    voted = client.post(VOTE_LINK.search(email.html)[1]).get_data(as_text=True)
    for page in (client.get(path).get_data(as_text=True), voted):
        assert "/preferences/" not in page and "/unsubscribe/" not in page
    asked = [
        client.post(f"{path}/preferences-link", data={"csrf_token": csrf_token(client, path)}).status_code
        for _ in range(5)
    ]
    assert asked == [200] * 5
    # However often it is asked for, the owner gets three such mails a day.
    assert enqueued() == [(task_names.SEND_PREFERENCES_LINK, [reader.id])] * 3
    MEMORY_OUTBOX.clear()
    assert preferences.send_preferences_link(web_settings, reader.id, sessions=sessions) == "sent"
    [(envelope, message)] = MEMORY_OUTBOX
    assert envelope.recipient == reader.email
    text = message_from_bytes(message, policy=policy.default).get_body(("plain",)).get_content()
    link = re.search(r"https://papermail\.test(/preferences/\S+)", text)[1]
    assert client.get(link).status_code == 200


def test_asking_for_a_preferences_link_is_rate_limited_per_network(make_app, web_settings, sent):
    _reader, _delivery, _chosen, email = sent
    client = make_app(replace(web_settings, signup_rate_per_ip=config.parsers.rate("2/h"))).test_client()
    path = view_path(email)
    token = csrf_token(client, path)
    codes = [
        client.post(f"{path}/preferences-link", data={"csrf_token": token}).status_code for _ in range(3)
    ]
    assert codes == [200, 200, 429]


def test_a_vote_after_unsubscribing_records_nothing(client, session, sent):
    reader, _delivery, chosen, email = sent
    unsubscribe(session, reader, actor="test")
    session.flush()
    answer = client.post(VOTE_LINK.search(email.html)[1])
    assert answer.status_code == 200 and "Nothing recorded" in answer.get_data(as_text=True)
    old_style = CompactTokens(client.application.extensions["papermail"].settings, Purpose.VOTE)
    client.post(old_style.link(reader.id, chosen[0].arxiv_id, 1).removeprefix("https://papermail.test"))
    assert votes_of(session, reader.id) == []


@pytest.mark.parametrize(
    "line",
    [
        "GET /%64igest/{token} HTTP/1.1",
        "GET /digest//{token} HTTP/1.1",
        "GET /DIGEST/{token} HTTP/1.1",
        "GET /%2Fdigest%2F{token} HTTP/1.1",
        "https://papermail.test/vote/{token}/3/more",
    ],
)
def test_the_access_log_never_shows_a_token_however_the_path_is_spelled(line):
    token = "WzEsMiwiYWJjIl0.axYv1A.Zx7-U8dL5ZIBBWkOfqfudJ7H5q0"
    redacted = redact(line.format(token=token))
    assert token not in redacted and "WzEs" not in redacted and "…" in redacted


def test_a_redirect_goes_to_the_base_url_whatever_host_was_asked_for(client, sent):
    _reader, _delivery, _chosen, email = sent
    token = view_path(email).rsplit("/", 1)[1]
    answer = client.get(f"/digest//{token}", headers={"Host": "evil.example"})
    assert answer.status_code == 308
    assert answer.headers["Location"] == f"https://papermail.test/digest/{token}"
    assert token not in redact(answer.headers["Location"])
    assert client.get(f"/%64igest/{token}").status_code == 200
