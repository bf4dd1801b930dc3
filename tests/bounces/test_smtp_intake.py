"""The inbound SMTP server: only our bounce addresses, limits, and stored before the 250."""

from __future__ import annotations

import json
import smtplib
import socket
from datetime import timedelta

import pytest
import redis
from click.testing import CliRunner

from papermail import task_names
from papermail.bounces.smtp_intake import FORGET_IPS_ABOVE, GroupStore, IntakeLimits
from papermail.bounces.store import Received
from papermail.cli import cli
from papermail.config import Rate
from papermail.sending.verp import VerpKind, make_token
from tests.bounces.conftest import BOUNCE_ADDRESS, dsn_for, stored_messages
from tests.conftest import REDIS_URL


def _client(port: int) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", port, timeout=10)
    client.ehlo("relay.test")
    return client


def _verp(settings, row_id: int = 7) -> str:
    return f"bounces+{make_token(settings, VerpKind.DELIVERY, row_id)}@papermail.test"


def test_a_report_is_stored_and_queued_before_the_250(intake_env, start_inbound):
    env = intake_env()
    live = start_inbound(env)
    verp = _verp(env.settings)
    with _client(live.port) as client:
        code, reply = client.mail("")  # DSNs come with an empty envelope sender
        assert code == 250
        assert client.rcpt(verp)[0] == 250
        code, reply = client.data(dsn_for("reader@example.org", verp=verp))
        # The row is committed by the time the client hears 250: it is read back at once.
        [stored] = stored_messages(env)
    assert code == 250 and f"inbound message {stored.id}".encode() in reply
    assert (stored.via, stored.envelope_sender, stored.envelope_recipient) == ("smtp", None, verp)
    assert stored.raw.startswith(b"From: Mail Delivery System")
    assert env.queued_tasks() == 1


def test_the_plain_bounce_address_is_accepted_too(intake_env, start_inbound):
    env = intake_env()
    live = start_inbound(env)
    with _client(live.port) as client:
        client.sendmail("mailer-daemon@relay.test", [BOUNCE_ADDRESS.upper()], dsn_for("x@example.org"))
    [stored] = stored_messages(env)
    assert stored.envelope_sender == "mailer-daemon@relay.test"


@pytest.mark.parametrize(
    "recipient",
    [
        "someone@example.org",  # a relay attempt
        "postmaster@papermail.test",
        "bounces+d7-aaaaaaaaaaaaaaaa@papermail.test",  # a forged token
        "bounces@elsewhere.test",
        "bounces+@papermail.test",
    ],
)
def test_any_other_recipient_is_refused_at_rcpt(intake_env, start_inbound, recipient):
    env = intake_env()
    live = start_inbound(env)
    with _client(live.port) as client:
        client.mail("")
        code, reply = client.rcpt(recipient)
    assert code == 550 and b"only takes bounces" in reply
    assert stored_messages(env) == []


def test_one_recipient_per_message(intake_env, start_inbound):
    env = intake_env()
    live = start_inbound(env)
    with _client(live.port) as client:
        client.mail("")
        assert client.rcpt(BOUNCE_ADDRESS)[0] == 250
        assert client.rcpt(_verp(env.settings))[0] == 452  # "send it separately": nothing is lost
        assert client.data(dsn_for("a@example.org"))[0] == 250
    assert len(stored_messages(env)) == 1


def test_an_oversized_message_is_refused_at_data(intake_env, start_inbound):
    env = intake_env(inbound_max_bytes="20000")
    live = start_inbound(env)
    big = dsn_for("a@example.org") + b"x" * 70 + b"\r\n"
    big += (b"y" * 998 + b"\r\n") * 25
    with _client(live.port) as client:
        assert b"SIZE 20000" in client.ehlo_resp
        client.mail("")
        client.rcpt(BOUNCE_ADDRESS)
        code, _reply = client.data(big)
        assert code == 552
        # A client announcing the size is refused already at MAIL.
        assert client.mail("", ["SIZE=50000"])[0] == 552
    assert stored_messages(env) == []


def test_a_flood_from_one_address_is_slowed_down(intake_env, start_inbound):
    env = intake_env(inbound_rate_per_ip="3/m")
    live = start_inbound(env)
    replies = []
    with _client(live.port) as client:
        for n in range(5):
            code, _ = client.mail("")
            replies.append(code)
            if code == 250:
                client.rcpt(BOUNCE_ADDRESS)
                client.data(dsn_for(f"a{n}@example.org"))
    assert replies == [250, 250, 250, 450, 450]
    assert len(stored_messages(env)) == 3


def test_connections_over_the_limits_get_421(intake_env, start_inbound):
    env = intake_env(inbound_connections_per_ip="2", inbound_max_connections="5")
    live = start_inbound(env)
    first, second = _client(live.port), _client(live.port)
    with socket.create_connection(("127.0.0.1", live.port), timeout=5) as third:
        assert third.recv(200).startswith(b"421 4.7.0 too many connections from your address")
    first.quit()
    wait_until_free = _client(live.port)  # a slot is free again once one closes
    assert wait_until_free.noop()[0] == 250
    for client in (second, wait_until_free):
        client.quit()
    assert live.server.limits.refused_connections == 1


def test_a_store_failure_is_a_451_and_the_client_keeps_the_report(send_env_factory, start_inbound, tmp_path):
    never_migrated = f"sqlite:///{tmp_path / 'empty.db'}"
    env = send_env_factory("sqlite", bounce_address=BOUNCE_ADDRESS, database_url=never_migrated)
    live = start_inbound(env)
    with _client(live.port) as client:
        client.mail("")
        client.rcpt(BOUNCE_ADDRESS)
        code, reply = client.data(dsn_for("a@example.org"))
    assert (code, reply[:9]) == (451, b"4.3.0 cou")
    assert env.queued_tasks() == 0


def test_one_task_processes_what_was_stored_together(intake_env, start_inbound):
    env = intake_env()
    live = start_inbound(env)
    with _client(live.port) as client:
        client.sendmail("", [BOUNCE_ADDRESS], dsn_for("a@example.org"))
    [raw] = redis.Redis.from_url(REDIS_URL).lrange(env.queue, 0, -1)
    assert json.loads(raw)["headers"]["task"] == task_names.PROCESS_INBOUND_GROUP


def test_one_bad_message_does_not_fail_the_others_stored_with_it(intake_env):
    env = intake_env()
    store = GroupStore(env.settings)
    good = [Received(dsn_for(f"r{n}@example.org"), None, BOUNCE_ADDRESS) for n in range(5)]
    bad = Received("not bytes", None, BOUNCE_ADDRESS)  # type: ignore[arg-type]
    futures = [store.submit(m) for m in [*good[:2], bad, *good[2:]]]
    store.close()
    with pytest.raises(TypeError):
        futures[2].result()
    ids = [f.result() for f in futures[:2] + futures[3:]]
    assert sorted(ids) == [m.id for m in stored_messages(env)] and len(ids) == 5


def test_each_message_stored_together_gets_its_own_id(intake_env):
    env = intake_env()
    store = GroupStore(env.settings)
    messages = [Received(dsn_for(f"r{n}@example.org"), f"mta{n}@mx.test", BOUNCE_ADDRESS) for n in range(30)]
    futures = [store.submit(m) for m in messages]
    store.close()
    senders = {m.id: m.envelope_sender for m in stored_messages(env)}
    assert [senders[f.result()] for f in futures] == [m.sender for m in messages]


def test_the_command_needs_the_bounce_address_and_a_free_port(send_env_factory, intake_env, start_inbound):
    send_env_factory("sqlite")
    result = CliRunner().invoke(cli, ["inbound", "--bind", "127.0.0.1:2525"])
    assert result.exit_code == 1 and "set PAPERMAIL_BOUNCE_ADDRESS first" in result.output
    busy = start_inbound(intake_env())
    result = CliRunner().invoke(cli, ["inbound", "--bind", f"127.0.0.1:{busy.port}"])
    assert result.exit_code == 1 and "cannot listen on" in result.output


def test_the_rate_limit_forgets_quiet_addresses():
    now = [0.0]
    limits = IntakeLimits(10, 10, Rate(2, timedelta(minutes=1), "2/m"), clock=lambda: now[0])
    assert [limits.allow_message("10.0.0.1") for _ in range(3)] == [True, True, False]
    for n in range(FORGET_IPS_ABOVE + 1):
        limits.allow_message(f"10.1.{n // 256}.{n % 256}")
    now[0] = 61.0
    assert limits.allow_message("10.0.0.1")  # its window has passed
    assert len(limits.recent) == 1
