"""send_batch against a real SMTP server with scripted replies, on SQLite and PostgreSQL.

These call the plain function in this process (a worker's task does exactly this); the crash,
queue and race tests with real worker processes are in ``test_workers.py``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from email import message_from_bytes, policy

import pytest
import sqlalchemy as sa

from papermail.db.bookkeeping import AuditLog
from papermail.db.models import Delivery, DeliveryStatus, Digest, Subscriber, SubscriberStatus
from papermail.delivery.breaker import resume_digest
from papermail.delivery.send import send_batch
from papermail.subscribers.core import is_suppressed
from papermail.subscribers.unsubscribe import unsubscribe
from tests.support.send_env import deliveries, plan_week, status_counts

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"])


@pytest.fixture
def planned(send_env_factory, smtp_server, backend):
    """``make(n, **settings)``: n subscribers with a planned weekly digest; returns (env, ids)."""

    def make(count: int = 5, **overrides: str):
        env = send_env_factory(backend, broker="embedded", mail_url=smtp_server.url, **overrides)
        return env, plan_week(env, count)

    return make


def send_until_settled(env, ids, rounds: int = 20) -> None:
    """Send, then keep sending the rows that went to retry once they are due (what the sweeper does)."""
    for _ in range(rounds):
        send_batch(env.settings, ids)
        with env.session() as session:
            if not session.scalar(
                sa.select(sa.func.count()).where(
                    Delivery.status == DeliveryStatus.RETRY, Delivery.id.in_(ids)
                )
            ):
                return
        time.sleep(0.25)
    raise AssertionError("deliveries still retrying")


def test_a_batch_is_delivered_once_each_over_one_connection(planned, smtp_server):
    env, ids = planned(5)
    report = send_batch(env.settings, ids)
    assert report.sent == 5 and report.counts()["not_claimed"] == 0
    assert sorted(smtp_server.count_by_recipient().values()) == [1] * 5
    assert smtp_server.connections == 1
    # Sending the same batch again claims nothing and sends nothing.
    again = send_batch(env.settings, ids)
    assert again.sent == 0 and again.not_claimed == 5
    assert len(smtp_server.messages) == 5


def test_the_message_is_well_formed_and_carries_its_delivery_message_id(planned, smtp_server):
    env, ids = planned(3)
    send_batch(env.settings, ids)
    with env.session() as session:
        message_ids = {d.message_id for d in deliveries(session)}
    seen = set()
    for captured in smtp_server.messages:
        raw = captured.data
        assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b"")
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998
        message = message_from_bytes(raw, policy=policy.SMTP)
        for header in ("Date", "Message-ID", "From", "To", "Subject", "MIME-Version", "List-Id"):
            assert message[header], header
        assert len(message.get_all("List-Unsubscribe")) == 1
        assert message["List-Unsubscribe"].startswith("<https://papermail.test/unsubscribe/")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message["Message-ID"].endswith("@papermail.test>")
        assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
        assert message["To"] == captured.recipient
        seen.add(message["Message-ID"])
    assert seen == message_ids and len(seen) == 3


def test_451_twice_then_250_is_delivered_with_the_attempts_recorded(planned, smtp_server):
    env, ids = planned(3)
    smtp_server.script("reader1@example.org", "data:451", "data:451")
    send_until_settled(env, ids)
    with env.session() as session:
        rows = {d.subscriber.email: d for d in deliveries(session)}
        row = rows["reader1@example.org"]
        assert row.status == DeliveryStatus.SENT and row.attempts == 3
        assert row.last_smtp_code == 250 and row.first_attempt_at < row.sent_at
        assert {r.attempts for e, r in rows.items() if e != "reader1@example.org"} == {1}
    assert len(smtp_server.received_by("reader1@example.org")) == 1
    assert smtp_server.transactions["reader1@example.org"]["data"] == 3


def test_550_at_rcpt_fails_suppresses_and_is_never_retried(planned, smtp_server):
    env, ids = planned(3)
    smtp_server.script("reader2@example.org", "rcpt:550")
    report = send_batch(env.settings, ids)
    assert report.sent == 2 and report.failed == 1
    send_batch(
        env.settings, ids, claimable=(DeliveryStatus.PENDING, DeliveryStatus.RETRY, DeliveryStatus.FAILED)
    )
    with env.session() as session:
        row = next(d for d in deliveries(session) if d.subscriber.email == "reader2@example.org")
        assert row.status == DeliveryStatus.FAILED and row.attempts == 1 and row.last_smtp_code == 550
        assert row.next_attempt_at is None
        assert row.subscriber.status == SubscriberStatus.BOUNCED
        assert is_suppressed(session, "reader2@example.org")
    assert smtp_server.transactions["reader2@example.org"]["rcpt"] == 1
    assert smtp_server.received_by("reader2@example.org") == []


def test_554_at_data_fails_without_suppressing(planned, smtp_server):
    env, ids = planned(2)
    smtp_server.script("reader0@example.org", "data:554")
    send_batch(env.settings, ids)
    with env.session() as session:
        row = next(d for d in deliveries(session) if d.subscriber.email == "reader0@example.org")
        assert (row.status, row.last_smtp_code) == (DeliveryStatus.FAILED, 554)
        assert not is_suppressed(session, "reader0@example.org")
        assert row.subscriber.status == SubscriberStatus.ACTIVE


@pytest.mark.parametrize("trouble", ["data:delay:3", "data:drop", "rcpt:421", "data:421"])
def test_timeouts_drops_and_421_retry_and_then_deliver_exactly_once(planned, smtp_server, trouble):
    env, ids = planned(4)
    smtp_server.script("reader1@example.org", trouble)
    started = time.monotonic()
    first = send_batch(env.settings, ids)
    # The socket timeout (1 s here) bounds a stalled server; nobody else waits on it for long.
    assert time.monotonic() - started < 2.5
    assert first.retried == 1 and first.sent == 3
    send_until_settled(env, ids)
    assert sorted(smtp_server.count_by_recipient().values()) == [1, 1, 1, 1]
    with env.session() as session:
        assert status_counts(session) == {"sent": 4}


def test_unsubscribing_between_planning_and_sending_means_no_message(planned, smtp_server):
    env, ids = planned(3)
    with env.session() as session:
        subscriber = session.scalars(
            sa.select(Subscriber).where(Subscriber.email == "reader0@example.org")
        ).one()
        unsubscribe(session, subscriber, actor="web")
        session.commit()
    report = send_batch(env.settings, ids)
    assert report.sent == 2 and report.skipped == 1
    assert smtp_server.received_by("reader0@example.org") == []
    with env.session() as session:
        row = next(d for d in deliveries(session) if d.subscriber.email == "reader0@example.org")
        assert row.status == DeliveryStatus.SKIPPED and "unsubscribed" in row.skip_reason


def test_a_header_injecting_subscriber_fails_cleanly_and_neighbours_are_sent(planned, smtp_server):
    env, ids = planned(3)
    with env.session() as session:
        # Written past the validation a signup would do, as a corrupted import might.
        session.execute(
            sa.update(Subscriber)
            .where(Subscriber.email == "reader1@example.org")
            .values(email="reader1@example.org\r\nBcc: victim@example.net")
        )
        session.commit()
    report = send_batch(env.settings, ids)
    assert report.sent == 2 and report.failed == 1
    assert smtp_server.count_by_recipient() == {"reader0@example.org": 1, "reader2@example.org": 1}
    assert all(b"Bcc" not in m.data for m in smtp_server.messages)
    with env.session() as session:
        failed = session.scalars(sa.select(Delivery).where(Delivery.status == DeliveryStatus.FAILED)).one()
        assert "could not be built" in failed.last_smtp_reply and failed.attempts == 0


def test_the_breaker_pauses_the_run_and_resuming_never_resends(planned, smtp_server):
    env, ids = planned(12, breaker_threshold="4")
    # Three go out, then the relay starts refusing everything for a while.
    first = send_batch(env.settings, ids[:3])
    assert first.sent == 3
    smtp_server.script(None, *["data:451"] * 4)
    report = send_batch(env.settings, ids)
    assert report.paused and report.retried == 4 and len(report.deferred_ids) == 5
    with env.session() as session:
        digest = session.scalars(sa.select(Digest)).one()
        assert digest.paused_at is not None and "4 consecutive" in digest.pause_reason
        assert "451" in digest.pause_reason
    # While paused, nothing is claimed.
    assert send_batch(env.settings, ids).not_claimed == 12
    with env.session() as session:
        to_send = resume_digest(session, "2026-W48", actor="cli:test")
        session.commit()
    # The handed-back rows, and the retries if their time has come; never a sent one.
    assert set(report.deferred_ids) <= set(to_send) <= set(report.deferred_ids) | set(report.retried_ids)
    send_until_settled(env, ids)
    assert sorted(smtp_server.count_by_recipient().values()) == [1] * 12


def test_the_connection_is_reused_up_to_its_cap(planned, smtp_server):
    env, ids = planned(7, smtp_max_per_connection="3")
    send_batch(env.settings, ids)
    assert len(smtp_server.messages) == 7
    assert smtp_server.connections == 3
    with env.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(AuditLog)) == 0


def test_a_relay_that_is_down_stops_the_batch_after_two_tries(planned, smtp_server):
    env, ids = planned(6)
    down = replace(env.settings, mail_url="smtp://127.0.0.1:9")  # nothing listens there
    report = send_batch(down, ids)
    assert report.relay_down and report.retried == 2 and len(report.deferred_ids) == 4
    with env.session() as session:
        assert status_counts(session) == {"retry": 2, "pending": 4}
    send_until_settled(env, ids)  # the relay is back
    assert sorted(smtp_server.count_by_recipient().values()) == [1] * 6


def test_rows_whose_worker_died_are_sent_one_claim_each_after_the_rest(planned, smtp_server):
    env, ids = planned(5)
    with env.session() as session:
        session.execute(sa.update(Delivery).where(Delivery.id.in_(ids[:2])).values(lost_claims=1))
        session.commit()
    report = send_batch(env.settings, ids)
    assert report.sent == 5
    # The three healthy rows share a connection; each suspect gets a claim (and connection) alone.
    assert smtp_server.connections == 3
    assert [m.connection for m in smtp_server.messages] == [1, 1, 1, 2, 3]
    with env.session() as session:
        assert session.scalar(sa.select(sa.func.sum(Delivery.claims))) == 5
