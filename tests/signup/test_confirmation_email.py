"""The confirmation email, its task, and the purge of signups never confirmed."""

from __future__ import annotations

import email
import re
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from email import policy

import pytest
import redis
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from freezegun import freeze_time

from papermail import celery_app, clock
from papermail.db.bookkeeping import RateLimitHit
from papermail.db.models import Confirmation, DeliveryStatus, Subscriber, SubscriberStatus
from papermail.mail.backends import MEMORY_OUTBOX
from papermail.mail.templates import get_templates
from papermail.sending.pacing import send_pacer_for
from papermail.signup import confirmations, flow, limits
from papermail.subscribers.core import is_suppressed
from papermail.subscribers.preferences import parse_preferences
from papermail.tasks import maintenance
from tests.conftest import REDIS_URL, dkim_verifies, free_port
from tests.support.web import csrf_token, post_signup

SPAM = "Buy pills at spam.example"
NOTHING = {"sent": 0, "retried": 0, "failed": 0, "skipped": 0, "not_claimed": 0, "deferred": 0}


@pytest.fixture
def outbox() -> Iterator[list]:
    MEMORY_OUTBOX.clear()
    yield MEMORY_OUTBOX
    MEMORY_OUTBOX.clear()


def signed_up(session, settings, address: str = "ada@example.org", keywords: str = SPAM):
    """Sign an address up through the domain function; return the subscriber."""
    preferences = parse_preferences(topics=["cs.LG"], keywords=keywords)
    limiter = limits.DatabaseRateLimiter()
    flow.request_signup(session, settings, email=address, preferences=preferences, limiter=limiter)
    return session.scalars(sa.select(Subscriber).where(Subscriber.email == address)).one()


def owed(session, subscriber) -> Confirmation:
    """The subscriber's newest confirmation row."""
    session.expire_all()
    return session.scalars(
        sa.select(Confirmation)
        .where(Confirmation.subscriber_id == subscriber.id)
        .order_by(Confirmation.id.desc())
    ).first()


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)


def test_the_confirmation_email_links_to_a_working_confirm_page(
    client, web_settings, session, sessions, people, outbox
):
    subscriber = signed_up(session, web_settings)
    assert confirmations.send_confirmation(web_settings, subscriber.id, sessions=sessions).sent == 1
    [(envelope, raw)] = outbox
    message = parse(raw)
    assert envelope.recipient == "ada@example.org" == message["To"]
    assert message["Subject"] == "Confirm your papermail subscription"
    assert message["List-Unsubscribe-Post"] is None and message["List-Unsubscribe"] is None
    assert message["Auto-Submitted"] == "auto-generated"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert SPAM not in raw.decode() and SPAM not in text and SPAM not in html, "user text echoed"
    link = re.search(r"https://papermail\.test(/confirm/\S+)", text)[1]
    assert f'href="https://papermail.test{link}"' in html
    assert "1 Test Street, Testville" in text and "1 Test Street, Testville" in html
    client.post(link, data={"csrf_token": csrf_token(client, link)})
    assert people.get("ada@example.org").status == SubscriberStatus.ACTIVE


def test_every_subject_renders_to_one_line(web_settings, session):
    subscriber = signed_up(session, web_settings)
    rendered = confirmations.render_confirmation(web_settings, subscriber)
    assert "\n" not in rendered.subject
    assert "confirm-subscription" in get_templates().names()


def test_a_confirmation_is_dkim_signed_like_a_digest(web_settings, session, sessions, outbox, dkim_key):
    key, record = dkim_key
    subscriber = signed_up(session, web_settings)
    signing = replace(web_settings, dkim_key_path=key, dkim_domain="papermail.test")
    assert confirmations.send_confirmation(signing, subscriber.id, sessions=sessions).sent == 1
    [(_, raw)] = outbox
    assert raw.startswith(b"DKIM-Signature:")
    assert dkim_verifies(raw, record)


def test_a_confirmation_is_paced_by_the_send_rate_digests_share(web_settings, session, sessions, outbox):
    queue = f"pacing-{uuid.uuid4().hex[:8]}"
    paced = replace(web_settings, send_rate=0.5, broker_url=REDIS_URL, celery_queue=queue)
    timeline = redis.Redis.from_url(REDIS_URL)
    digest_pacer = send_pacer_for(paced)
    assert timeline.get(digest_pacer.key) is None
    try:
        subscriber = signed_up(session, paced)
        assert confirmations.send_confirmation(paced, subscriber.id, sessions=sessions).sent == 1
        # The confirmation took a slot on the digests' timeline: the next message waits 2 s for it.
        next_free = float(timeline.get(digest_pacer.key))
        assert next_free > float(timeline.time()[0]) + 1
    finally:
        timeline.delete(digest_pacer.key)
    assert len(outbox) == 1


def test_nothing_is_sent_to_someone_who_no_longer_awaits_it(web_settings, session, sessions, outbox):
    subscriber = signed_up(session, web_settings)
    subscriber.status = SubscriberStatus.ACTIVE
    session.flush()
    assert confirmations.send_confirmation(web_settings, subscriber.id, sessions=sessions).skipped == 1
    assert owed(session, subscriber).skip_reason == "subscriber is active at send time"
    assert confirmations.send_confirmation(web_settings, subscriber.id, sessions=sessions).counts() == NOTHING
    assert confirmations.send_confirmation(web_settings, 987_654, sessions=sessions).counts() == NOTHING
    assert outbox == []


class RefusingHandler:
    """An SMTP server that refuses every recipient, as for a mistyped address."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "550 5.1.1 No such user"


@pytest.fixture
def refusing_smtp() -> Iterator[str]:
    port = free_port()
    controller = Controller(RefusingHandler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield f"smtp://127.0.0.1:{port}"
    controller.stop()


def test_a_refused_address_is_marked_bounced_and_suppressed(
    web_settings, session, sessions, people, refusing_smtp
):
    settings = replace(web_settings, mail_url=refusing_smtp)
    subscriber = signed_up(session, settings)
    assert confirmations.send_confirmation(settings, subscriber.id, sessions=sessions).failed == 1
    assert people.get("ada@example.org").status == SubscriberStatus.BOUNCED
    assert is_suppressed(session, "ada@example.org")


def test_an_unreachable_server_is_retried_later_like_a_digest(web_settings, session, sessions):
    settings = replace(web_settings, mail_url=f"smtp://127.0.0.1:{free_port()}", smtp_timeout_seconds=2.0)
    subscriber = signed_up(session, settings)
    assert confirmations.send_confirmation(settings, subscriber.id, sessions=sessions).retried == 1
    confirmation = owed(session, subscriber)
    assert confirmation.status == DeliveryStatus.RETRY and confirmation.attempts == 1
    assert confirmation.next_attempt_at > clock.now()


def test_the_tasks_are_registered_and_the_purge_is_scheduled(web_settings):
    app = celery_app.create_celery(web_settings)
    app.loader.import_default_modules()
    assert {"papermail.send_confirmation", "papermail.purge_expired_signups"} <= set(app.tasks)
    schedule = celery_app.beat_schedule()
    assert schedule["purge-expired-signups"]["task"] == "papermail.purge_expired_signups"
    assert maintenance.PURGE_EXPIRED_SIGNUPS_AT is schedule["purge-expired-signups"]["schedule"]


def test_unconfirmed_signups_are_purged_after_their_time(web_settings, session, people):
    with freeze_time("2026-03-02 09:00") as frozen:
        people.add("stale@example.org", SubscriberStatus.PENDING, confirmation_sent_at=clock.now())
        people.add("active@example.org")
        people.add("gone@example.org", SubscriberStatus.UNSUBSCRIBED)
        frozen.tick(timedelta(days=3))
        people.add("fresh@example.org", SubscriberStatus.PENDING, confirmation_sent_at=clock.now())
        assert flow.purge_unconfirmed(session, web_settings) == 0
        frozen.tick(timedelta(days=1, minutes=1))
        assert flow.purge_unconfirmed(session, web_settings) == 1
        assert people.get("stale@example.org") is None
        assert all(people.get(f"{n}@example.org") for n in ("active", "gone", "fresh"))


def test_old_rate_limit_hits_are_purged(web_settings, session):
    with freeze_time("2026-03-02 09:00") as frozen:
        for _ in range(3):
            assert limits.DatabaseRateLimiter().allow(session, "k", web_settings.signup_rate_per_ip)
        frozen.tick(timedelta(hours=7))
        cutoff = clock.now() - limits.longest_window(web_settings).window
        assert limits.purge_hits(session, cutoff) == 3
    # Only this key's hits: tests that commit (the signup flood, say) may leave newer ones behind.
    assert session.scalar(sa.select(sa.func.count()).where(RateLimitHit.key == "k")) == 0


def test_a_signup_through_the_page_queues_exactly_what_the_task_sends(
    client, web_settings, session, sessions, outbox, enqueued
):
    post_signup(client, keywords=SPAM)
    [(task, [subscriber_id])] = enqueued()
    assert task == "papermail.send_confirmation"
    assert confirmations.send_confirmation(web_settings, subscriber_id, sessions=sessions).sent == 1
    assert SPAM not in outbox[0][1].decode()
