"""``papermail bounces fetch`` against a real dovecot: stored and committed first, then deleted."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from papermail import celery_app, task_names
from papermail.bounces.imap_intake import MailboxError, fetch_mailbox, mailbox_address
from papermail.cli import cli
from tests.bounces.conftest import dsn_for, stored_messages


def test_waiting_reports_are_stored_then_deleted(intake_env, mailbox):
    mailbox.append(dsn_for("a@example.org"), dsn_for("b@example.org"), b"Subject: not a report\r\n\r\nhi\r\n")
    env = intake_env(bounce_imap_url=mailbox.url, bounce_imap_ca_file=mailbox.ca_file)
    result = fetch_mailbox(env.settings)
    stored = stored_messages(env)
    assert result.stored == [m.id for m in stored] and len(stored) == 3
    assert {m.via for m in stored} == {"imap"}
    assert b"Final-Recipient: rfc822; b@example.org" in stored[1].raw
    assert mailbox.count() == 0
    assert env.queued_tasks() == 1  # one processing task for the batch, queued after the commit
    assert fetch_mailbox(env.settings).stored == []


def test_nothing_is_deleted_unless_it_was_committed(send_env_factory, mailbox, tmp_path):
    mailbox.append(dsn_for("a@example.org"), dsn_for("b@example.org"))
    never_migrated = f"sqlite:///{tmp_path / 'empty.db'}"
    env = send_env_factory(
        "sqlite",
        database_url=never_migrated,
        bounce_imap_url=mailbox.url,
        bounce_imap_ca_file=mailbox.ca_file,
    )
    with pytest.raises(sa.exc.OperationalError):
        fetch_mailbox(env.settings)
    assert mailbox.count() == 2


def test_a_big_message_is_stored_up_to_the_size_limit(intake_env, mailbox):
    mailbox.append(dsn_for("a@example.org") + (b"z" * 900 + b"\r\n") * 40)
    env = intake_env(
        bounce_imap_url=mailbox.url, bounce_imap_ca_file=mailbox.ca_file, inbound_max_bytes="4096"
    )
    fetch_mailbox(env.settings)
    [stored] = stored_messages(env)
    assert len(stored.raw) == 4096 and stored.raw.startswith(b"From: Mail Delivery System")


def test_the_command_prints_json_and_one_line_errors(intake_env, mailbox):
    mailbox.append(dsn_for("a@example.org"))
    env = intake_env(bounce_imap_url=mailbox.url, bounce_imap_ca_file=mailbox.ca_file)
    runner = CliRunner()
    result = runner.invoke(cli, ["bounces", "fetch", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "mailbox": "INBOX",
        "stored": 1,
        "inbound_message_ids": [stored_messages(env)[0].id],
    }
    wrong = mailbox.url.replace(":papermail-test@", ":wrong@")
    intake_env(bounce_imap_url=wrong, bounce_imap_ca_file=mailbox.ca_file)
    refused = runner.invoke(cli, ["bounces", "fetch"])
    assert refused.exit_code == 1
    assert refused.output.count("\n") == 1 and "refused" in refused.output and "wrong" not in refused.output


def test_an_untrusted_certificate_is_refused(intake_env, mailbox):
    env = intake_env(bounce_imap_url=mailbox.url)  # no CA file: dovecot's self-signed cert fails
    with pytest.raises(MailboxError, match="CERTIFICATE_VERIFY_FAILED"):
        fetch_mailbox(env.settings)


def test_beat_polls_the_mailbox_only_when_it_is_set(intake_env, mailbox):
    intake_env()
    assert "fetch-bounce-mailbox" not in celery_app.beat_schedule()
    intake_env(bounce_imap_url=mailbox.url, bounce_imap_cron="*/2 * * * *")
    entry = celery_app.beat_schedule()["fetch-bounce-mailbox"]
    assert entry["task"] == task_names.FETCH_BOUNCE_MAILBOX


def test_the_url_names_the_mailbox(mailbox):
    address = mailbox_address("imaps://b%40x.org:p%3Aw@imap.example.org/Bounces%20In")
    assert (address.user, address.password, address.port, address.mailbox) == (
        "b@x.org",
        "p:w",
        993,
        "Bounces In",
    )
