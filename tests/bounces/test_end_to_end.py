"""End to end: a digest leaves with VERP through the real SMTP stand-in, its DSN is imported with
``papermail bounces import``, the reader is suppressed, and the next digest skips them."""

from __future__ import annotations

import email
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from papermail import clock
from papermail.bounces import parse_verp_recipient
from papermail.cli import cli
from papermail.db.models import Confirmation, Delivery, Subscriber, SubscriberStatus
from papermail.delivery.plan import plan
from papermail.delivery.send import send_batch
from papermail.mail.backends import FileBackend
from papermail.mail.message import OutgoingEmail
from papermail.mail.outbox import NoPacing, Outbox
from papermail.signup import confirmations, flow
from papermail.signup.limits import DatabaseRateLimiter
from papermail.subscribers.preferences import parse_preferences
from tests.support.send_env import add_ranking, plan_week

pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgresql"])


def _dsn_for(captured, status: str = "5.1.1") -> bytes:
    """What a relay sends back: a DSN to the envelope sender, quoting the returned headers."""
    original = email.message_from_bytes(captured.data)
    headers = "".join(f"{k}: {v}\n" for k, v in original.items() if k.lower() != "content-type")
    return (
        f"From: MAILER-DAEMON@relay.example.net\nTo: {captured.sender}\n"
        f"Message-ID: <dsn-{captured.recipient}@relay.example.net>\nMIME-Version: 1.0\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\n\n'
        "--r\nContent-Type: text/plain\n\nThe mailbox is gone.\n\n"
        "--r\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; relay.example.net\n\n"
        f"Final-Recipient: rfc822; {captured.recipient}\nAction: failed\nStatus: {status}\n"
        f"Diagnostic-Code: smtp; 550 {status} user unknown\n\n"
        f"--r\nContent-Type: text/rfc822-headers\n\n{headers}\n--r--\n"
    ).encode()


def test_a_dsn_to_the_verp_address_suppresses_the_reader_and_the_next_digest_skips_them(
    send_env_factory, smtp_server, backend, tmp_path
):
    env = send_env_factory(
        backend, broker="embedded", mail_url=smtp_server.url, bounce_address="bounces@papermail.test"
    )
    ids = plan_week(env, 3)
    send_batch(env.settings, ids)
    (captured,) = smtp_server.received_by("reader1@example.org")
    with env.session() as session:
        delivery = session.scalar(
            sa.select(Delivery).join(Subscriber).where(Subscriber.email == captured.recipient)
        )
        assert captured.sender.startswith(f"bounces+d{delivery.id}-")
    report = tmp_path / "dsn.eml"
    report.write_bytes(_dsn_for(captured))

    runner = CliRunner()
    result = runner.invoke(cli, ["bounces", "import", "--json", str(report)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["messages"] == [
        {
            "source": str(report),
            "kind": "bounce",
            "recipients": [
                {
                    "address": "reader1@example.org",
                    "status": "5.1.1",
                    "verdict": "hard",
                    "action": "suppressed",
                }
            ],
        }
    ]
    again = json.loads(runner.invoke(cli, ["bounces", "import", "--json", str(report)]).output)
    assert again["messages"][0]["recipients"][0]["action"] == "already-seen"

    with env.session() as session:
        reader = session.scalar(sa.select(Subscriber).where(Subscriber.email == "reader1@example.org"))
        assert reader.status == SubscriberStatus.BOUNCED
        event_id = session.scalar(sa.text("SELECT id FROM bounce_events"))
        assert session.scalar(sa.text("SELECT delivery_id FROM bounce_events")) == delivery.id
        add_ranking(session)
        next_ids = plan(session, env.settings, now=clock.now(), period_key="2026-W49")
        session.commit()
        planned_for = set(
            session.scalars(sa.select(Subscriber.email).join(Delivery).where(Delivery.id.in_(next_ids)))
        )
    assert planned_for == {"reader0@example.org", "reader2@example.org"}
    shown = runner.invoke(cli, ["bounces", "show", str(event_id)], catch_exceptions=False)
    assert "Status: 5.1.1" in shown.output and "hard" in shown.output
    listed = json.loads(runner.invoke(cli, ["bounces", "list", "--json"], catch_exceptions=False).output)
    assert [e["address"] for e in listed] == ["reader1@example.org"]


def test_dry_run_changes_nothing_and_reactivate_lifts_the_bounce(send_env_factory, backend, tmp_path):
    env = send_env_factory(backend, broker="embedded")
    plan_week(env, 1)
    report = tmp_path / "mbox"
    dsn = (
        "From: MAILER-DAEMON@mx.example.org\nMessage-ID: <d1@mx>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx\n\n"
        "Final-Recipient: rfc822; reader0@example.org\nAction: failed\nStatus: 5.1.1\n\n--b--\n"
    )
    report.write_text(f"From MAILER-DAEMON Mon Dec  7 10:00:00 2026\n{dsn}\n")
    runner = CliRunner()
    dry = json.loads(runner.invoke(cli, ["bounces", "import", "--dry-run", "--json", str(report)]).output)
    assert dry["messages"][0]["source"] == f"{report}#1"
    assert dry["messages"][0]["recipients"][0]["action"] == "suppressed"
    real = json.loads(runner.invoke(cli, ["bounces", "import", "--json", str(report)]).output)
    assert real["messages"][0]["recipients"][0]["action"] == "suppressed"  # the dry run left no trace
    result = runner.invoke(cli, ["subscribers", "reactivate", "reader0@example.org"], catch_exceptions=False)
    assert result.exit_code == 0 and "reactivated" in result.output
    missing = runner.invoke(cli, ["bounces", "import", str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "no such file" in missing.output


def test_the_file_outbox_writes_the_return_path(tmp_path, backend):
    with Outbox(
        mail_from="papermail <digest@papermail.test>",
        backend=FileBackend(tmp_path),
        pacer=NoPacing(),
        signer=None,
    ) as outbox:
        outbox.send(OutgoingEmail("a@example.org", "s", "t"), return_path="bounces+d1-x@papermail.test")
        outbox.send(OutgoingEmail("b@example.org", "s", "t"))
    written = sorted(path.read_bytes() for path in tmp_path.glob("*.eml"))
    assert [b"Return-Path: <bounces+d1-x@papermail.test>" in data for data in written] == [True, False]


def test_a_complaint_is_never_mailed_again_even_by_resend_force(
    send_env_factory, smtp_server, backend, tmp_path
):
    env = send_env_factory(backend, broker="embedded", mail_url=smtp_server.url)
    send_batch(env.settings, plan_week(env, 2))
    arf = (Path(__file__).parent / "samples" / "arf_abuse.eml").read_bytes()
    (tmp_path / "arf.eml").write_bytes(arf)
    runner = CliRunner()
    imported = json.loads(
        runner.invoke(cli, ["bounces", "import", "--json", str(tmp_path / "arf.eml")]).output
    )
    assert imported["messages"][0]["kind"] == "complaint"
    before = len(smtp_server.messages)
    forced = runner.invoke(cli, ["resend", "reader0@example.org", "--force"])
    assert forced.exit_code == 1 and len(smtp_server.messages) == before
    refused = runner.invoke(cli, ["subscribers", "reactivate", "reader0@example.org"])
    assert refused.exit_code == 1 and "complaint" in refused.output


def test_a_confirmation_leaves_with_its_own_return_path(send_env_factory, smtp_server, backend):
    env = send_env_factory(
        backend, broker="embedded", mail_url=smtp_server.url, bounce_address="bounces@papermail.test"
    )
    with env.session() as session:
        flow.request_signup(
            session,
            env.settings,
            email="new@example.org",
            preferences=parse_preferences(topics=["cs.LG"], keywords=""),
            limiter=DatabaseRateLimiter(),
        )
        session.commit()
        subscriber_id = session.scalar(sa.select(Subscriber.id).where(Subscriber.email == "new@example.org"))
        confirmation_id = session.scalar(sa.select(Confirmation.id))
    confirmations.send_confirmation(env.settings, subscriber_id)
    (captured,) = smtp_server.received_by("new@example.org")
    target = parse_verp_recipient(env.settings, captured.sender)
    assert target is not None and target.confirmation_id == confirmation_id
