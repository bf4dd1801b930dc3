"""The links in emails: confirm (GET shows, POST confirms, once), preferences, one-click unsubscribe."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from papermail import clock
from papermail.db.bookkeeping import AuditLog
from papermail.db.models import Delivery, DeliveryStatus, Digest, Frequency, SubscriberStatus
from papermail.signup import confirmations
from papermail.subscribers import links
from tests.support.web import add_papers, csrf_token, link_path, preferences_path, response_fingerprint

CONFIRM, PREFERENCES, UNSUBSCRIBE = (
    links.Purpose.CONFIRM,
    links.Purpose.PREFERENCES,
    links.Purpose.UNSUBSCRIBE,
)


def audit_count(session, action: str) -> int:
    query = sa.select(sa.func.count()).select_from(AuditLog).where(AuditLog.action == action)
    return session.scalar(query) or 0


@pytest.fixture
def pending(people):
    """A subscriber who signed up and was mailed a confirmation link just now."""
    return people.add("ada@example.org", SubscriberStatus.PENDING, confirmation_sent_at=clock.now())


def confirm_path(settings, subscriber) -> str:
    return confirmations.confirm_link(settings, subscriber).removeprefix(settings.base_url)


def press(client, path: str):
    """Open a page with a form and press its button, as a person would."""
    return client.post(path, data={"csrf_token": csrf_token(client, path)})


# -- confirm --------------------------------------------------------------------------------------


def test_opening_the_confirm_link_changes_nothing(client, web_settings, people, pending):
    page = client.get(confirm_path(web_settings, pending))
    assert page.status_code == 200
    assert ">Confirm</button>" in page.get_data(as_text=True)
    assert people.get("ada@example.org").status == SubscriberStatus.PENDING


def test_pressing_confirm_subscribes_once(client, web_settings, people, session, pending):
    path = confirm_path(web_settings, pending)
    response = press(client, path)
    assert response.status_code == 200
    assert "You're subscribed" in response.get_data(as_text=True)
    subscriber = people.get("ada@example.org")
    assert subscriber.status == SubscriberStatus.ACTIVE
    assert subscriber.confirmed_at is not None
    assert subscriber.consent_ip is None, "the IP is kept only when PAPERMAIL_RECORD_CONSENT_IP is on"
    again = press_without_page(client, path)
    assert again.status_code == 200
    assert audit_count(session, "subscriber.confirm") == 1
    # The page leads to working preferences.
    preferences_url = re.search(r'href="(/preferences/[^"]+)"', response.get_data(as_text=True))[1]
    assert client.get(preferences_url).status_code == 200


def test_a_used_link_cannot_resubscribe_after_unsubscribing(client, web_settings, people, session, pending):
    path = confirm_path(web_settings, pending)
    press(client, path)
    client.post(link_path(web_settings, UNSUBSCRIBE, pending.id), data={"List-Unsubscribe": "One-Click"})
    assert client.get(path).status_code == 400
    assert press_without_page(client, path).status_code == 400
    assert people.get("ada@example.org").status == SubscriberStatus.UNSUBSCRIBED


def test_a_superseded_link_is_refused_and_a_used_one_mints_no_key(
    client, web_settings, people, session, pending
):
    with freeze_time(clock.now() - timedelta(minutes=5)):
        pending.confirmation_sent_at = clock.now()
        first = confirm_path(web_settings, pending)
    # A second signup mails a newer link: it replaces the first, as the README says.
    pending.confirmation_sent_at = clock.now()
    session.flush()
    latest = confirm_path(web_settings, pending)
    assert client.get(first).status_code == 400
    assert press_without_page(client, first).status_code == 400
    assert people.get("ada@example.org").status == SubscriberStatus.PENDING
    assert "You're subscribed" in press(client, latest).get_data(as_text=True)
    # Opened or pressed again (a forwarded mail, a scanner): no key to the account on the page.
    for used in (client.get(latest), press_without_page(client, latest)):
        page = used.get_data(as_text=True)
        assert used.status_code == 200 and "Already confirmed" in page
        assert "/preferences/" not in page


def press_without_page(client, path: str):
    return client.post(path, data={"csrf_token": csrf_token(client)})


def test_confirm_links_expire(make_app, web_settings, people):
    settings = replace(web_settings, confirm_hours=24.0)
    client = make_app(settings).test_client()
    with freeze_time("2026-03-02 09:00") as frozen:
        subscriber = people.add("ada@example.org", SubscriberStatus.PENDING, confirmation_sent_at=clock.now())
        path = confirm_path(settings, subscriber)
        frozen.tick(timedelta(hours=25))
        assert client.get(path).status_code == 400
        assert press_without_page(client, path).status_code == 400
    assert people.get("ada@example.org").status == SubscriberStatus.PENDING


def test_confirm_records_the_ip_when_configured(make_app, web_settings, people, pending):
    client = make_app(replace(web_settings, record_consent_ip=True)).test_client()
    press(client, confirm_path(web_settings, pending))
    assert people.get("ada@example.org").consent_ip == "127.0.0.1"


def test_confirm_needs_the_csrf_token(client, web_settings, people, pending):
    path = confirm_path(web_settings, pending)
    client.get(path)
    assert client.post(path).status_code == 400
    assert people.get("ada@example.org").status == SubscriberStatus.PENDING


def test_bad_confirm_links_all_look_the_same(client, web_settings, people, pending):
    good = confirm_path(web_settings, pending)
    forged = links.make_token(web_settings, CONFIRM, pending.id, 1, "0" * 16)
    bad_paths = [
        good[:-3] + "abc",  # tampered
        link_path(web_settings, UNSUBSCRIBE, pending.id),  # another purpose's salt
        "/confirm/" + links.make_token(web_settings, CONFIRM, 999_999, 1, "x"),  # no such subscriber
        "/confirm/" + forged,  # right id, wrong address
        "/confirm/random-garbage",
    ]
    bad_paths = [p.replace("/unsubscribe/", "/confirm/") for p in bad_paths]
    answers = {response_fingerprint(client.get(p)) for p in bad_paths}
    assert len(answers) == 1
    assert next(iter(answers))[0] == 400
    assert people.get("ada@example.org").status == SubscriberStatus.PENDING


# -- preferences ----------------------------------------------------------------------------------


@pytest.fixture
def active(people):
    return people.add("ada@example.org", topics=["cs.LG"], keywords=["diffusion"])


def test_preferences_show_the_current_choices(client, web_settings, active):
    page = client.get(preferences_path(web_settings, active)).get_data(as_text=True)
    assert re.search(r'value="cs.LG" checked', page)
    assert not re.search(r'value="cs.CL" checked', page)
    assert 'value="diffusion"' in page
    assert "No digest has been sent to you yet" in page


def test_preferences_can_be_changed(client, web_settings, people, session, active):
    path = preferences_path(web_settings, active)
    form = {
        "csrf_token": csrf_token(client, path),
        "topics": ["cs.RO", "stat.ML"],
        "keywords": "robot learning",
        "frequency": "daily",
        "send_weekday": "4",
        "send_hour": "18",
        "timezone": "America/New_York",
    }
    response = client.post(path, data=form)
    assert response.status_code == 200
    assert "Saved" in response.get_data(as_text=True)
    subscriber = people.get("ada@example.org")
    assert subscriber.topics == ["cs.RO", "stat.ML"]
    assert subscriber.keywords == ["robot learning"]
    assert (subscriber.frequency, subscriber.send_weekday, subscriber.send_hour) == (Frequency.DAILY, 4, 18)
    assert subscriber.timezone == "America/New_York"
    assert audit_count(session, "subscriber.preferences") == 1


@pytest.mark.parametrize(
    "change",
    [{"keywords": "<script>x</script>"}, {"timezone": "Nowhere/City"}, {"topics": [], "keywords": ""}],
)
def test_bad_preferences_are_refused_and_nothing_changes(client, web_settings, people, active, change):
    path = preferences_path(web_settings, active)
    form = {"csrf_token": csrf_token(client, path), "topics": ["cs.CV"], "timezone": "UTC", **change}
    response = client.post(path, data=form)
    assert response.status_code == 400
    assert 'role="alert"' in response.get_data(as_text=True)
    assert "<script>x" not in response.get_data(as_text=True)
    assert people.get("ada@example.org").topics == ["cs.LG"]


def test_preferences_need_the_csrf_token(client, web_settings, people, active):
    path = preferences_path(web_settings, active)
    client.get(path)
    assert client.post(path, data={"topics": ["cs.CV"], "timezone": "UTC"}).status_code == 400
    assert people.get("ada@example.org").topics == ["cs.LG"]


def test_preferences_list_the_last_digests(client, web_settings, session, active):
    now = clock.now()
    papers = add_papers(session, ["Paper <0>", "Paper <1>", "Paper <2>"])
    for week, (status, chosen) in enumerate(
        [
            (DeliveryStatus.SENT, papers[:2]),
            (DeliveryStatus.SENT, papers[2:]),
            (DeliveryStatus.FAILED, papers),
        ]
    ):
        period = f"2026-W0{week + 1}"
        digest = Digest(period_key=period, created_at=now)
        session.add(digest)
        session.flush()
        session.add(
            Delivery(
                digest_id=digest.id,
                subscriber_id=active.id,
                period_key=period,
                status=status,
                paper_ids=[p.id for p in chosen],
                scheduled_for=now,
                planned_at=now,
                updated_at=now,
                sent_at=datetime(2026, 1, 5 + 7 * week, 8, tzinfo=UTC)
                if status == DeliveryStatus.SENT
                else None,
            )
        )
    session.flush()
    page = client.get(preferences_path(web_settings, active)).get_data(as_text=True)
    assert page.index("2026-W02") < page.index("2026-W01"), "newest first"
    assert "2026-W03" not in page, "only digests that were sent"
    assert "Paper &lt;0&gt;" in page and "Paper &lt;2&gt;" in page
    assert papers[0].abs_url in page


def test_unsubscribed_people_see_no_preference_form(client, web_settings, people):
    gone = people.add("gone@example.org", SubscriberStatus.UNSUBSCRIBED)
    page = client.get(preferences_path(web_settings, gone)).get_data(as_text=True)
    assert "You are unsubscribed" in page
    assert "Save preferences" not in page


def test_bad_preference_links_are_refused(client, web_settings, active):
    paths = [
        preferences_path(web_settings, active)[:-2] + "xx",
        link_path(web_settings, UNSUBSCRIBE, active.id).replace("/unsubscribe/", "/preferences/"),
    ]
    answers = {response_fingerprint(client.get(p)) for p in paths}
    assert len(answers) == 1 and next(iter(answers))[0] == 400


# -- unsubscribe ----------------------------------------------------------------------------------


def test_opening_the_unsubscribe_link_changes_nothing(client, web_settings, people, active):
    page = client.get(link_path(web_settings, UNSUBSCRIBE, active.id))
    assert page.status_code == 200
    assert "Unsubscribe</button>" in page.get_data(as_text=True)
    assert people.get("ada@example.org").status == SubscriberStatus.ACTIVE


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_unsubscribe_without_cookies_or_csrf(app, web_settings, people, session, active, encoding):
    client = app.test_client(use_cookies=False)
    path = link_path(web_settings, UNSUBSCRIBE, active.id)
    content_type = "multipart/form-data" if encoding == "multipart" else "application/x-www-form-urlencoded"
    responses = [
        client.post(path, data={"List-Unsubscribe": "One-Click"}, content_type=content_type) for _ in range(3)
    ]
    for response in responses:
        assert response.status_code == 200
        assert "Location" not in response.headers
        assert "Set-Cookie" not in response.headers
    assert people.get("ada@example.org").status == SubscriberStatus.UNSUBSCRIBED
    assert audit_count(session, "subscriber.unsubscribe") == 1


def test_bad_unsubscribe_links_change_nothing_and_look_the_same(app, web_settings, people, active):
    client = app.test_client(use_cookies=False)
    good = link_path(web_settings, UNSUBSCRIBE, active.id)
    bad_paths = [
        good[:-3] + "abc",
        link_path(web_settings, CONFIRM, active.id).replace("/confirm/", "/unsubscribe/"),
        link_path(replace(web_settings, secret_key="someone-else"), UNSUBSCRIBE, active.id),
        "/unsubscribe/" + "A" * 40,
    ]
    posts = {response_fingerprint(client.post(p, data={"List-Unsubscribe": "One-Click"})) for p in bad_paths}
    gets = {response_fingerprint(client.get(p)) for p in bad_paths}
    assert len(posts) == 1 and len(gets) == 1
    assert next(iter(posts))[0] == 400
    assert people.get("ada@example.org").status == SubscriberStatus.ACTIVE


def test_unsubscribe_links_survive_sixty_days_and_a_key_rotation(make_app, web_settings, people, active):
    with freeze_time("2026-01-01") as frozen:
        path = link_path(web_settings, UNSUBSCRIBE, active.id)
        frozen.tick(timedelta(days=61))
        rotated = replace(web_settings, secret_key="new-key", old_secret_keys=(web_settings.secret_key,))
        client = make_app(rotated).test_client(use_cookies=False)
        assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert people.get("ada@example.org").status == SubscriberStatus.UNSUBSCRIBED


def test_a_valid_link_for_an_erased_subscriber_still_says_unsubscribed(app, web_settings):
    client = app.test_client(use_cookies=False)
    response = client.post(
        link_path(web_settings, UNSUBSCRIBE, 987_654), data={"List-Unsubscribe": "One-Click"}
    )
    assert response.status_code == 200
    assert "You're unsubscribed" in response.get_data(as_text=True)


def test_the_preferences_page_unsubscribe_button_works(client, web_settings, people, active):
    page = client.get(preferences_path(web_settings, active)).get_data(as_text=True)
    action = re.search(r'<form method="post" action="(/unsubscribe/[^"]+)"', page)[1]
    assert client.post(action, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert people.get("ada@example.org").status == SubscriberStatus.UNSUBSCRIBED


# -- how long links live (issue 13, point 7) ------------------------------------------------------


def test_a_preference_link_dies_when_the_address_changes_or_is_erased(
    client, web_settings, people, session, active
):
    path = preferences_path(web_settings, active)
    assert client.get(path).status_code == 200
    active.email = "ada.new@example.org"
    session.flush()
    assert client.get(path).status_code == 400
    assert client.get(preferences_path(web_settings, active)).status_code == 200
    fresh = preferences_path(web_settings, active)
    session.delete(active)
    session.flush()
    assert client.get(fresh).status_code == 400


def test_a_preference_link_without_the_address_is_refused(client, web_settings, active):
    # What links looked like before they were bound to the address: they can't be revoked.
    assert client.get(link_path(web_settings, PREFERENCES, active.id)).status_code == 400


def test_a_preference_link_lives_a_year(client, web_settings, active):
    with freeze_time(clock.now()) as frozen:
        path = preferences_path(web_settings, active)
        frozen.tick(timedelta(days=364))
        assert client.get(path).status_code == 200
        frozen.tick(timedelta(days=2))
        assert client.get(path).status_code == 400


def test_unsubscribe_links_never_expire_even_for_an_erased_address(
    app, web_settings, people, session, active
):
    client = app.test_client(use_cookies=False)
    with freeze_time(clock.now()) as frozen:
        path = link_path(web_settings, UNSUBSCRIBE, active.id)
        gone = people.add("gone@example.org")
        gone_path = link_path(web_settings, UNSUBSCRIBE, gone.id)
        session.delete(gone)
        session.flush()
        frozen.tick(timedelta(days=10 * 365))
        assert client.get(path).status_code == 200
        assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
        erased = client.post(gone_path, data={"List-Unsubscribe": "One-Click"})
    assert people.get("ada@example.org").status == SubscriberStatus.UNSUBSCRIBED
    assert erased.status_code == 200 and "You're unsubscribed" in erased.get_data(as_text=True)


def test_a_reader_can_turn_tldrs_off_and_on(client, web_settings, people, active):
    path = preferences_path(web_settings, active)
    page = client.get(path).get_data(as_text=True)
    assert 'name="show_tldr" value="on" checked' in page
    response = client.post(path, data={"csrf_token": csrf_token(client, path), "form": "tldr"})
    assert response.status_code == 200
    assert "leave out TL;DRs" in response.get_data(as_text=True)
    assert people.get("ada@example.org").show_tldr is False
    form = {"csrf_token": csrf_token(client, path), "form": "tldr", "show_tldr": "on"}
    assert "will show TL;DRs" in client.post(path, data=form).get_data(as_text=True)
    subscriber = people.get("ada@example.org")
    assert subscriber.show_tldr is True
    assert subscriber.topics == ["cs.LG"]  # the other preferences are left as they were
