"""End to end through each way in: a digest goes out with VERP through the relay stand-in, the
report comes back by SMTP (papermail inbound), IMAP (dovecot) or a provider webhook, a real worker
acts on it where one is needed, the reader is suppressed and the next digest skips them."""

from __future__ import annotations

import json
import signal
import smtplib
import subprocess
import sys
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from papermail import clock, task_names
from papermail.celery_app import get_celery
from papermail.db.models import BounceEvent, Delivery, Subscriber, SubscriberStatus
from papermail.delivery.plan import plan
from papermail.delivery.send import send_batch
from papermail.signup.limits import DatabaseRateLimiter
from papermail.web import create_app
from tests.bounces import providers as p
from tests.bounces.conftest import BOUNCE_ADDRESS, dsn_for, wait_for_smtp
from tests.conftest import free_port, subprocess_env, wait_for
from tests.support.send_env import add_ranking, plan_week
from tests.support.smtp_server import Captured

pytestmark = pytest.mark.slow


def _send_first_week(env, smtp_server, readers: int) -> list[Captured]:
    """Plan and send 2026-W48's digests through the relay stand-in; what it accepted, by reader."""
    ids = plan_week(env, readers)
    send_batch(env.settings, ids)
    captured = [smtp_server.received_by(f"reader{n}@example.org")[0] for n in range(readers)]
    assert all(c.sender.startswith("bounces+d") for c in captured)
    return captured


def _status_of(env, email: str) -> SubscriberStatus:
    with env.session() as session:
        return session.scalar(sa.select(Subscriber.status).where(Subscriber.email == email))


def _next_week_readers(env) -> set[str]:
    with env.session() as session:
        add_ranking(session)
        ids = plan(session, env.settings, now=clock.now(), period_key="2026-W49")
        session.commit()
        query = sa.select(Subscriber.email).join(Delivery).where(Delivery.id.in_(ids))
        return set(session.scalars(query))


@pytest.fixture
def inbound_process(tmp_path) -> Iterator:
    """``start(env)``: ``papermail inbound`` as its own process; returns its port."""
    started: list[subprocess.Popen] = []

    def start(env) -> int:
        port = free_port()
        command = [sys.executable, "-m", "papermail", "inbound", "--bind", f"127.0.0.1:{port}"]
        with (tmp_path / "inbound.log").open("ab") as log:  # the child keeps its own copy open
            started.append(subprocess.Popen(command, env=subprocess_env(env.environ), stdout=log, stderr=log))
        wait_for_smtp(port, "papermail inbound to listen")
        return port

    yield start
    for process in started:
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0


@pytest.fixture
def relay_env(send_env_factory, smtp_server):
    """``relay_env(backend, **settings)``: VERP on, digests sent through the relay stand-in."""
    return lambda backend="postgresql", **extra: send_env_factory(
        backend, mail_url=smtp_server.url, bounce_address=BOUNCE_ADDRESS, **extra
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_dsn_by_smtp(relay_env, smtp_server, worker_factory, inbound_process, backend):
    env = relay_env(backend)
    captured = _send_first_week(env, smtp_server, 3)
    worker_factory(env.environ)
    port = inbound_process(env)
    # The relay accepted the digest, then found the mailbox gone: its DSN goes to the VERP address.
    gone = captured[1]
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as relay:
        relay.sendmail("", [gone.sender], dsn_for(gone.recipient, verp=gone.sender))
        # A forged return path is refused at RCPT: it never reaches the pipeline.
        refused = gone.sender.replace("bounces+d", "bounces+d9")
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            relay.sendmail("", [refused], dsn_for("reader0@example.org", verp=refused))
    wait_for(lambda: _status_of(env, gone.recipient) == SubscriberStatus.BOUNCED, timeout=60)
    assert _next_week_readers(env) == {"reader0@example.org", "reader2@example.org"}


def test_a_dsn_by_imap(relay_env, smtp_server, worker_factory, mailbox):
    env = relay_env(bounce_imap_url=mailbox.url, bounce_imap_ca_file=mailbox.ca_file)
    captured = _send_first_week(env, smtp_server, 2)
    mailbox.append(dsn_for(captured[0].recipient, verp=captured[0].sender))
    worker_factory(env.environ)
    get_celery().send_task(task_names.FETCH_BOUNCE_MAILBOX)  # what beat sends on its schedule
    wait_for(lambda: _status_of(env, captured[0].recipient) == SubscriberStatus.BOUNCED, timeout=60)
    assert mailbox.count() == 0
    assert _next_week_readers(env) == {"reader1@example.org"}


def test_each_provider_webhook(relay_env, smtp_server):
    sns_signer, sendgrid_signer = p.SnsSigner(), p.SendGridSigner()
    env = relay_env(**p.webhook_settings(sns_signer, sendgrid_signer))
    captured = _send_first_week(env, smtp_server, 6)
    client = create_app(env.settings, {"TESTING": True, "RATE_LIMITER": DatabaseRateLimiter()}).test_client()
    ses, mailgun, sendgrid, postmark, generic = captured[:5]
    sns_message = sns_signer.notification(p.ses_bounce(ses.recipient, source=ses.sender))
    sendgrid_body = json.dumps([p.sendgrid_event(sendgrid.recipient, status="5.1.1", type="bounce")]).encode()
    requests = [
        ("ses", json.dumps(sns_message).encode(), {}),
        (
            "mailgun",
            json.dumps(p.mailgun_webhook(p.mailgun_failed(mailgun.recipient, sender=mailgun.sender))),
            {},
        ),
        ("sendgrid", sendgrid_body, sendgrid_signer.headers(sendgrid_body)),
        ("postmark", json.dumps(p.postmark_bounce(postmark.recipient)).encode(), p.postmark_headers()),
        (
            "generic",
            json.dumps({"events": [p.generic_event(generic.recipient, "complaint")]}),
            p.generic_headers(),
        ),
    ]
    try:
        for provider, body, headers in requests:
            response = client.post(f"/webhooks/{provider}", data=body, headers=headers)
            assert response.status_code == 200, (provider, response.get_json())
    finally:
        sns_signer.close()
    for reader in (ses, mailgun, sendgrid, postmark):
        assert _status_of(env, reader.recipient) == SubscriberStatus.BOUNCED
    assert _status_of(env, generic.recipient) == SubscriberStatus.UNSUBSCRIBED
    with env.session() as session:
        # SES and Mailgun pass our VERP token on: their events name the exact delivery.
        query = sa.select(BounceEvent.provider, BounceEvent.delivery_id)
        linked = dict(session.execute(query.where(BounceEvent.provider.in_(["ses", "mailgun"]))).all())
    assert set(linked) == {"ses", "mailgun"} and None not in linked.values()
    assert _next_week_readers(env) == {"reader5@example.org"}
