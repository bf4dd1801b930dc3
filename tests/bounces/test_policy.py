"""Verdicts acting on subscribers, on SQLite and PostgreSQL: what each one does, once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from papermail import clock
from papermail.bounces import (
    ProviderEvent,
    apply_provider_event,
    parse_verp_recipient,
    process_inbound_message,
)
from papermail.bounces.policy import reactivate
from papermail.bounces.store import Received, insert_inbound_messages
from papermail.db.bookkeeping import AuditLog
from papermail.db.models import BounceVerdict, Confirmation, Delivery, Digest, Subscriber, SubscriberStatus
from papermail.sending.verp import VerpKind, verp_sender_for
from papermail.subscribers import links
from papermail.subscribers.core import is_suppressed
from tests.bounces.conftest import dsn_for
from tests.conftest import make_settings
from tests.support.send_env import add_subscribers

SAMPLES = Path(__file__).parent / "samples"


@pytest.fixture
def verp_settings(settings, tmp_path):
    return make_settings(
        tmp_path, database_url=settings.database_url, bounce_address="bounces@papermail.test"
    )


def _process(session, settings, raw: bytes, envelope_recipient: str | None = None) -> object:
    [message_id] = insert_inbound_messages(
        session, [Received(raw, recipient=envelope_recipient)], via="import"
    )
    return process_inbound_message(session, message_id, settings=settings)


def _subscriber(session, n: int = 0) -> Subscriber:
    return session.scalar(sa.select(Subscriber).where(Subscriber.email == f"reader{n}@example.org"))


def test_a_hard_bounce_suppresses_at_once_and_the_same_report_twice_changes_nothing(session, settings):
    add_subscribers(session, 2)
    report = dsn_for("reader0@example.org", status="5.1.1", message_id="<h1@mx.example.org>")
    first = _process(session, settings, report)
    assert [(r.verdict.value, r.action.value) for r in first.recipients] == [("hard", "suppressed")]
    subscriber = _subscriber(session)
    assert subscriber.status == SubscriberStatus.BOUNCED and is_suppressed(session, subscriber.email)
    again = _process(session, settings, report)
    assert again.duplicate and [r.action.value for r in again.recipients] == ["already-seen"]
    assert _subscriber(session, 1).status == SubscriberStatus.ACTIVE


def test_processing_a_message_twice_changes_nothing(session, settings):
    add_subscribers(session, 1)
    [message_id] = insert_inbound_messages(
        session, [Received(dsn_for("reader0@example.org", status="5.1.1"))], via="smtp"
    )
    process_inbound_message(session, message_id, settings=settings)
    second = process_inbound_message(session, message_id, settings=settings)
    assert second.duplicate and [r.action.value for r in second.recipients] == ["already-seen"]


def test_a_complaint_unsubscribes_for_good_and_reactivate_refuses(session, settings):
    add_subscribers(session, 1)
    result = _process(session, settings, (SAMPLES / "arf_abuse.eml").read_bytes())
    assert [(r.verdict.value, r.action.value) for r in result.recipients] == [("complaint", "unsubscribed")]
    subscriber = _subscriber(session)
    assert subscriber.status == SubscriberStatus.UNSUBSCRIBED and is_suppressed(session, subscriber.email)
    with pytest.raises(PermissionError):
        reactivate(session, subscriber, actor="test")


def test_a_redacted_complaint_finds_the_reader_by_the_signed_unsubscribe_link(session, settings):
    (subscriber_id,) = add_subscribers(session, 1)
    url = links.link(settings, links.Purpose.UNSUBSCRIBE, subscriber_id)
    raw = (SAMPLES / "arf_redacted.eml").read_text().replace("{UNSUBSCRIBE_URL}", url).encode()
    result = _process(session, settings, raw)
    actions = {r.address: r.action.value for r in result.recipients}
    assert actions == {"xxxxxxxx@example.org": "not-a-subscriber", "reader0@example.org": "unsubscribed"}


def test_reactivate_lifts_a_bounce_with_an_audit_line(session, settings):
    add_subscribers(session, 1)
    _process(session, settings, dsn_for("reader0@example.org", status="5.1.1"))
    subscriber = _subscriber(session)
    assert reactivate(session, subscriber, actor="test")
    assert subscriber.status == SubscriberStatus.ACTIVE and not is_suppressed(session, subscriber.email)
    assert not reactivate(session, subscriber, actor="test")
    session.flush()
    audit = sa.select(AuditLog.actor).where(AuditLog.action == "subscriber.reactivate")
    assert list(session.scalars(audit)) == ["test"]


def test_soft_bounces_count_once_a_day_and_bounce_at_five(session, settings):
    add_subscribers(session, 1)
    start = clock.now()
    actions = []
    for day in range(11):
        with freeze_time(start + timedelta(days=day)):
            for _copy in range(2):  # the second one the same day doesn't count
                result = _process(
                    session, settings, dsn_for("reader0@example.org", status="4.2.2", action="failed")
                )
                actions.append(result.recipients[0].action.value)
    assert actions[:4] == ["counted", "none", "counted", "none"]
    assert actions.count("counted") == 9 and actions[18] == "suppressed"
    assert _subscriber(session).status == SubscriberStatus.BOUNCED


def test_a_soft_score_starts_over_after_a_quiet_week(session, settings):
    add_subscribers(session, 1)
    start = clock.now()
    for day in (0, 1, 2, 12):
        with freeze_time(start + timedelta(days=day)):
            _process(session, settings, dsn_for("reader0@example.org", status="4.2.2", action="failed"))
    assert _subscriber(session).bounce_score == 0.5


def test_a_success_report_resets_the_score(session, settings):
    add_subscribers(session, 1)
    _process(session, settings, dsn_for("reader0@example.org", status="4.2.2", action="failed"))
    result = _process(session, settings, (SAMPLES / "success_dsn.eml").read_bytes())
    assert result.kind.value == "delivery-report"
    assert _subscriber(session).bounce_score == 0


def test_sender_faults_auto_replies_and_strangers_never_act(session, settings):
    add_subscribers(session, 2)
    blocked = _process(session, settings, (SAMPLES / "blocked_dsn.eml").read_bytes())
    assert [(r.verdict.value, r.action.value) for r in blocked.recipients] == [("sender", "none")]
    assert _process(session, settings, (SAMPLES / "auto_reply.eml").read_bytes()).recipients == []
    stranger = _process(session, settings, dsn_for("someone@else.example", status="5.1.1"))
    assert [r.action.value for r in stranger.recipients] == ["not-a-subscriber"]
    loop = _process(session, settings, (SAMPLES / "bounce_of_a_bounce.eml").read_bytes())
    assert [r.action.value for r in loop.recipients] == ["not-a-subscriber"]
    assert {s.status for s in (_subscriber(session, 0), _subscriber(session, 1))} == {SubscriberStatus.ACTIVE}


def test_broken_input_is_stored_and_unparsed(session, settings):
    for name in ("broken_mime", "empty", "bad_charset"):
        result = _process(session, settings, (SAMPLES / f"{name}.eml").read_bytes())
        assert result.kind.value == "unparsed" and result.recipients == []


def test_verp_tokens_verify_and_forgeries_do_not(verp_settings):
    sender = verp_sender_for(verp_settings, VerpKind.DELIVERY, 42)
    assert sender.startswith("bounces+d42-") and sender.endswith("@papermail.test")
    assert len(sender.partition("@")[0]) <= 64
    assert parse_verp_recipient(verp_settings, sender.upper()).delivery_id == 42
    forged = sender.replace("d42-", "d43-")
    assert parse_verp_recipient(verp_settings, forged) is None
    assert parse_verp_recipient(verp_settings, "bounces@papermail.test") is None
    assert parse_verp_recipient(verp_settings, "someone@papermail.test") is None


def test_a_report_naming_nobody_acts_on_the_verp_token_it_carries(session, verp_settings):
    (subscriber_id,) = add_subscribers(session, 1)
    row = Confirmation(subscriber_id=subscriber_id, requested_at=clock.now(), updated_at=clock.now())
    session.add(row)
    session.flush()
    address = verp_sender_for(verp_settings, VerpKind.CONFIRMATION, row.id)
    raw = (
        "From: MAILER-DAEMON@mx.example.org\nSubject: Undeliverable: Please confirm\n"
        f"To: {address}\n\nThe mailbox does not exist.\n"
    ).encode()
    result = _process(session, verp_settings, raw, envelope_recipient=address)
    assert [(r.address, r.verdict.value, r.action.value, r.confirmation_id) for r in result.recipients] == [
        ("reader0@example.org", "hard", "suppressed", row.id)
    ]


def test_provider_events_are_deduplicated_by_their_id(session, settings):
    add_subscribers(session, 1)
    event = ProviderEvent("ses", "evt-1", "Reader0@example.org", BounceVerdict.COMPLAINT, raw={"x": 1})
    first = apply_provider_event(session, event, settings=settings)
    assert first.kind.value == "complaint" and first.recipients[0].action.value == "unsubscribed"
    second = apply_provider_event(session, event, settings=settings)
    assert second.duplicate and second.recipients[0].action.value == "already-seen"


def test_a_provider_event_for_an_unknown_address_acts_on_the_subscriber_its_token_names(
    session, verp_settings
):
    add_subscribers(session, 1)
    session.add(Digest(period_key="2026-W48", created_at=clock.now()))
    session.flush()
    delivery = Delivery(
        digest_id=session.scalar(sa.select(Digest.id)),
        subscriber_id=_subscriber(session).id,
        period_key="2026-W48",
        scheduled_for=clock.now(),
        planned_at=clock.now(),
        updated_at=clock.now(),
    )
    session.add(delivery)
    session.flush()
    token = verp_sender_for(verp_settings, VerpKind.DELIVERY, delivery.id).partition("+")[2].partition("@")[0]
    event = ProviderEvent(
        "mailgun",
        "m-1",
        "forwarded@elsewhere.example",
        BounceVerdict.HARD,
        "5.1.1\0garbage",
        verp_token=token,
    )
    result = apply_provider_event(session, event, settings=verp_settings)
    assert [(r.address, r.action.value, r.delivery_id) for r in result.recipients] == [
        ("reader0@example.org", "suppressed", delivery.id)
    ]
