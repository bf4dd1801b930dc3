"""POST /subscribe: one answer for everyone, double opt-in, limits, honeypot and bad input."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from papermail import config, task_names
from papermail.celery_app import reset_celery
from papermail.db.bookkeeping import AuditLog, RateLimitHit, SignupRequest
from papermail.db.models import Frequency, Subscriber, SubscriberStatus, Suppression
from papermail.signup import flow
from papermail.signup.requests import process_request
from papermail.subscribers.core import suppress
from tests.support.web import (
    SIGNUP_FORM,
    csrf_token,
    post_signup,
    process_signup_requests,
    response_fingerprint,
)

SEND = "papermail.send_confirmation"


def test_a_new_address_becomes_pending_and_gets_a_confirmation(client, people, enqueued):
    response = post_signup(client)
    assert response.status_code == 200
    assert "Check your inbox" in response.get_data(as_text=True)
    subscriber = people.get("ada@example.org")
    assert subscriber.status == SubscriberStatus.PENDING
    assert subscriber.topics == ["cs.CL", "cs.LG"]
    assert subscriber.keywords == ["diffusion", "retrieval"]
    assert (subscriber.frequency, subscriber.send_weekday, subscriber.send_hour) == (Frequency.WEEKLY, 0, 8)
    assert subscriber.timezone == "Europe/Berlin"
    assert subscriber.confirmation_sent_at is not None
    assert enqueued() == [(SEND, [subscriber.id])]


def test_every_kind_of_address_gets_the_same_answer(client, people, enqueued):
    people.add("pending@example.org", SubscriberStatus.PENDING)
    people.add("active@example.org", SubscriberStatus.ACTIVE)
    people.add("gone@example.org", SubscriberStatus.UNSUBSCRIBED)
    token = csrf_token(client)
    answers = {
        email: response_fingerprint(post_signup(client, email=email, csrf_token=token))
        for email in ("new@example.org", "pending@example.org", "active@example.org", "gone@example.org")
    }
    assert len(set(answers.values())) == 1, "the answer reveals whether an address is known"
    assert not any(name.lower() == "set-cookie" for name, _ in answers["new@example.org"][1])
    # New, pending and unsubscribed addresses get a confirmation; the active one gets nothing.
    queued = {args[0] for _task, args in enqueued()}
    assert queued == {
        people.get(e).id for e in ("new@example.org", "pending@example.org", "gone@example.org")
    }


def test_an_active_subscriber_is_left_alone(client, people, enqueued):
    active = people.add("active@example.org", topics=["cs.RO"])
    post_signup(client, email="Active@Example.org", topics=["cs.LG"])
    assert enqueued() == []
    assert people.get("active@example.org").topics == ["cs.RO"], "a stranger changed someone's preferences"
    assert people.get("active@example.org").status == SubscriberStatus.ACTIVE
    assert active.confirmation_sent_at is None


def test_an_unsubscribed_address_must_confirm_again(client, people, enqueued):
    people.add("gone@example.org", SubscriberStatus.UNSUBSCRIBED)
    post_signup(client, email="gone@example.org")
    subscriber = people.get("gone@example.org")
    assert subscriber.status == SubscriberStatus.UNSUBSCRIBED, "resubscribed without confirmation"
    assert enqueued() == [(SEND, [subscriber.id])]


def test_suppressed_addresses_get_the_same_page_and_nothing_else(client, people, session, enqueued):
    suppress(session, "erased@example.org", "erased")
    people.add("bounced@example.org", SubscriberStatus.BOUNCED)
    expected = response_fingerprint(post_signup(client, email="someone@example.org"))
    enqueued()
    for email in ("erased@example.org", "bounced@example.org"):
        assert (
            response_fingerprint(post_signup(client, email=email, csrf_token=csrf_token(client))) == expected
        )
    assert people.get("erased@example.org") is None
    assert enqueued() == []


def test_at_most_three_confirmations_per_address_per_six_hours(make_app, web_settings, people, enqueued):
    settings = replace(web_settings, signup_rate_per_ip=config.parsers.rate("100/h"))
    client = make_app(settings).test_client()
    with freeze_time("2026-03-02 09:00") as frozen:
        answers = set()
        for _ in range(10):
            answers.add(response_fingerprint(post_signup(client)))
            frozen.tick(timedelta(minutes=1))
        assert len(answers) == 1
        assert len(enqueued()) == 3
        assert people.count() == 1
        frozen.tick(timedelta(hours=6))
        post_signup(client)
        assert len(enqueued()) == 1


def test_case_and_idn_forms_are_one_subscriber(client, people, enqueued):
    for email in ("Grace@Bücher.example", "grace@xn--bcher-kva.example", "GRACE@BÜCHER.EXAMPLE"):
        assert post_signup(client, email=email).status_code == 200
    assert people.count() == 1
    assert people.get("grace@xn--bcher-kva.example").status == SubscriberStatus.PENDING


def test_a_filled_honeypot_gets_the_same_page_and_is_dropped(client, people, session, enqueued):
    real = response_fingerprint(post_signup(client, email="real@example.org"))
    enqueued()
    audit_rows = session.scalar(sa.select(sa.func.count()).select_from(AuditLog))
    bot = post_signup(client, email="bot@example.org", website="http://spam.example")
    assert response_fingerprint(bot) == real
    assert people.get("bot@example.org") is None
    assert enqueued() == []
    assert session.scalar(sa.select(sa.func.count()).select_from(AuditLog)) == audit_rows


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email": "x" * 250 + "@example.org"}, "longer than 254 characters"),
        ({"email": "x" * 65 + "@example.org"}, "longer than 64 bytes"),
        ({"email": "é" * 33 + "@example.org"}, "longer than 64 bytes"),
        ({"email": "ada@example.org\r\nBcc: victim@example.org"}, "line breaks"),
        ({"email": "<script>alert(1)</script>@example.org"}, "HTML"),
        ({"email": "not an address"}, "doesn&#39;t look like an email address"),
        ({"keywords": "<script>alert(1)</script>"}, "HTML"),
        ({"keywords": "diffusion\r\nBcc: x@example.org"}, "line breaks"),
        ({"keywords": "a" * 1001}, "too long"),
        ({"keywords": "x" * 61}, "Keywords are words"),
        ({"topics": ["cs.NOPE"]}, "is not an arXiv category"),
        ({"topics": ["<b>cs.LG</b>"]}, "HTML"),
        ({"topics": [], "keywords": ""}, "Choose at least one topic or keyword"),
        ({"timezone": "Mars/Olympus"}, "Unknown timezone"),
        ({"timezone": "<svg onload=alert(1)>"}, "HTML"),
        ({"send_hour": "25"}, "Hour must be between 0 and 23"),
        ({"send_weekday": "monday"}, "Send day must be a number"),
        ({"frequency": "hourly"}, "Frequency must be weekly or daily"),
    ],
)
def test_bad_input_is_refused_on_the_form(client, people, enqueued, fields, message):
    response = post_signup(client, **fields)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in page
    assert 'role="alert"' in page
    assert "<script>alert" not in page and "<svg onload" not in page and "<b>cs.LG" not in page
    assert people.count() == 0
    assert enqueued() == []


def test_the_form_keeps_what_was_typed_escaped(client):
    page = post_signup(client, email='"><img src=x>@x', keywords="graphs").get_data(as_text=True)
    assert 'value="graphs"' in page
    assert "<img src=x>" not in page
    assert "&#34;&gt;&lt;img src=x&gt;@x" in page


def test_a_huge_request_is_refused(client, people):
    response = post_signup(client, keywords="a" * 20_000)
    assert response.status_code == 413
    assert people.count() == 0


def test_signup_without_a_csrf_token_is_refused(client, people, enqueued):
    client.get("/")
    form = dict(SIGNUP_FORM)
    for token in (None, "forged", csrf_token(client.application.test_client())):
        data = form if token is None else {**form, "csrf_token": token}
        response = client.post("/subscribe", data=data)
        assert response.status_code == 400
        assert "This form has expired" in response.get_data(as_text=True)
    assert people.count() == 0
    assert enqueued() == []


def test_csrf_tokens_expire(client, people):
    with freeze_time("2026-03-02 09:00") as frozen:
        token = csrf_token(client)
        frozen.tick(timedelta(hours=13))
        assert post_signup(client, csrf_token=token).status_code == 400
    assert people.count() == 0


@pytest.mark.parametrize("limiter_kind", ["database", "redis"])
def test_signups_are_limited_per_ip(make_app, web_settings, redis_limiter, people, limiter_kind):
    settings = replace(web_settings, signup_rate_per_ip=config.parsers.rate("5/h"))
    app = make_app(settings, redis_limiter if limiter_kind == "redis" else None)
    client = app.test_client()
    token = csrf_token(client)
    codes = [post_signup(client, email=f"p{n}@example.org", csrf_token=token).status_code for n in range(7)]
    assert codes == [200] * 5 + [429] * 2
    assert "Too many requests" in post_signup(client, csrf_token=token).get_data(as_text=True)
    other = client.post(
        "/subscribe",
        data={**SIGNUP_FORM, "email": "other@example.org", "csrf_token": token},
        environ_base={"REMOTE_ADDR": "192.0.2.7"},
    )
    assert other.status_code == 200
    process_signup_requests(app)
    assert people.count() == 6


def test_a_broker_outage_after_commit_still_gets_the_same_page(make_app, web_settings, people, caplog):
    """Queueing the email fails after the signup committed: same page, row kept, error logged."""
    expected = response_fingerprint(post_signup(make_app().test_client(), email="before@example.org"))
    unreachable = replace(web_settings, broker_url="redis://127.0.0.1:9/0")
    config.use_settings(unreachable)
    reset_celery()
    try:
        response = post_signup(make_app(unreachable).test_client(), email="during@example.org")
    finally:
        config.use_settings(web_settings)
        reset_celery()
    assert response_fingerprint(response) == expected
    assert people.get("during@example.org").status == SubscriberStatus.PENDING
    assert "could not queue papermail.send_confirmation" in caplog.text
    assert "during@example.org" not in caplog.text


def _table_counts(session) -> dict[str, int]:
    session.expire_all()
    counted = (Subscriber, SignupRequest, AuditLog, RateLimitHit, Suppression)
    return {m.__tablename__: session.scalar(sa.select(sa.func.count()).select_from(m)) for m in counted}


def test_every_outcome_does_the_same_work_on_the_request_path(client, people, session, enqueued):
    """New, active, unsubscribed and suppressed: one request row, one queued task, nothing else."""
    people.add("active@example.org")
    people.add("gone@example.org", SubscriberStatus.UNSUBSCRIBED)
    suppress(session, "erased@example.org", "erased")
    token = csrf_token(client)
    changes = {}
    for email in ("new@example.org", "active@example.org", "gone@example.org", "erased@example.org"):
        before = _table_counts(session)
        response = client.post("/subscribe", data={**SIGNUP_FORM, "email": email, "csrf_token": token})
        after = _table_counts(session)
        assert response.status_code == 200
        changes[email] = ({t: after[t] - before[t] for t in after}, [name for name, _ in enqueued(True)])
    # The per-IP limit's and the global budget's hits and the request row: the same rows and the
    # same task for everyone.
    assert len({repr(change) for change in changes.values()}) == 1, changes
    assert changes["new@example.org"] == (
        {"subscribers": 0, "signup_requests": 1, "audit_log": 0, "rate_limit_hits": 2, "suppressions": 0},
        [task_names.PROCESS_SIGNUP],
    )
    assert people.get("new@example.org") is None  # decided later, by a worker
    outcomes = process_signup_requests(client.application)
    assert outcomes == [
        flow.SignupOutcome.CONFIRMATION_QUEUED,
        flow.SignupOutcome.ALREADY_ACTIVE,
        flow.SignupOutcome.CONFIRMATION_QUEUED,
        flow.SignupOutcome.SUPPRESSED,
    ]
    assert {args[0] for _task, args in enqueued()} == {
        people.get("new@example.org").id,
        people.get("gone@example.org").id,
    }


def test_a_request_is_processed_once_however_often_its_task_runs(client, people, session, enqueued):
    client.post("/subscribe", data={**SIGNUP_FORM, "csrf_token": csrf_token(client)})
    ((_task, [request_id]),) = enqueued(True)
    context = client.application.extensions["papermail"]
    runs = [
        context.transaction(lambda s: process_request(s, context.settings, request_id, context.limiter))
        for _ in range(2)
    ]
    assert runs == [flow.SignupOutcome.CONFIRMATION_QUEUED, None]
    assert len(enqueued()) == 1


def test_topics_sent_in_any_case_are_stored_canonical(client, people, enqueued):
    post_signup(client, topics=["cs.lg", "ASTRO-PH.GA"])
    assert people.get("ada@example.org").topics == ["astro-ph.GA", "cs.LG"]
