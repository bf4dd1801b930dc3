"""``papermail resend``: idempotent, frozen content, audited when forced, never to someone who left.

Digests are planned with ``digest plan`` and sent as a worker would (``send_batch``, in this
process) to a real SMTP server; resends then go through the command line.
"""

import json
import re
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
import sqlalchemy as sa

from papermail import clock, config
from papermail.db import session_scope
from papermail.db.models import Delivery, DeliveryStatus, Digest, Subscriber
from papermail.delivery.breaker import pause_digests
from papermail.delivery.send import send_batch
from tests.cli.conftest import one_line_error
from tests.conftest import settings_environ, subprocess_env

PERIOD = "2026-W48"
READERS = [f"reader{n}@example.org" for n in range(6)]
# The signed links in a digest carry their signing time; everything else must be byte-identical.
SIGNED_LINK = re.compile(r"/(unsubscribe|preferences|vote|digest)/[A-Za-z0-9_.\-]+")


@pytest.fixture
def sending(cli_settings, seed, smtp_server, run):
    """Six active readers of cs.LG, a ranking of cs.LG papers, mail to the SMTP server; planned."""
    settings = replace(cli_settings, mail_url=smtp_server.url)
    config.use_settings(settings)
    seed.scoring_run([(f"2611.0{n:04d}", f"Paper number {n}", f"+{50 - n} upvotes / 24h") for n in range(8)])
    for email in READERS:
        seed.subscriber(email)
    planned = run("digest", "plan", "--period", PERIOD)
    assert planned.exit_code == 0, planned.output
    return settings


def drain(settings) -> None:
    """What a worker does with the planned rows."""
    with session_scope(settings) as session:
        ids = list(session.scalars(sa.select(Delivery.id).where(Delivery.status == DeliveryStatus.PENDING)))
    send_batch(settings, ids)


def statuses(seed) -> dict[str, str]:
    """Each reader's delivery status."""
    with session_scope(seed.settings) as session:
        query = sa.select(Subscriber.email, Delivery.status).join(
            Delivery, Delivery.subscriber_id == Subscriber.id
        )
        return {email: status.value for email, status in session.execute(query)}


def test_after_a_normal_run_resend_sends_nothing(run, sending, smtp_server, seed):
    drain(sending)
    assert smtp_server.count_by_recipient() == dict.fromkeys(READERS, 1)

    result = run("resend", "--period", PERIOD, "--failed")
    assert result.exit_code == 0, result.output
    assert f"nothing to resend in {PERIOD}" in result.stdout
    one = run("resend", READERS[0])
    assert one.exit_code == 0
    assert f"the {PERIOD} digest for {READERS[0]} was sent" in one.stdout and "add --force" in one.stdout
    assert smtp_server.count_by_recipient() == dict.fromkeys(READERS, 1)


@pytest.fixture
def three_failed(sending, smtp_server):
    """A run in which the server rejected three readers' digests at DATA (554)."""
    for email in READERS[1:4]:
        smtp_server.script(email, "data:554")
    drain(sending)
    return sending


def test_three_failures_then_resend_failed_sends_exactly_three(run, three_failed, smtp_server, seed):
    assert smtp_server.count_by_recipient() == {READERS[0]: 1, READERS[4]: 1, READERS[5]: 1}

    dry = run("resend", "--period", PERIOD, "--failed", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert re.search(r"failed\s*│\s*3", dry.stdout) and re.search(r"sent\s*│\s*3", dry.stdout)
    assert f"would resend 3 undelivered digests of {PERIOD}; nothing sent" in dry.stdout
    assert len(smtp_server.messages) == 3

    result = run("resend", "--period", PERIOD, "--failed")
    assert result.exit_code == 0, result.output
    assert f"resent {PERIOD}: 3 sent" in result.stdout
    assert smtp_server.count_by_recipient() == dict.fromkeys(READERS, 1)
    assert set(statuses(seed).values()) == {"sent"}

    again = run("resend", "--period", PERIOD, "--failed", "--json")
    assert json.loads(again.stdout)["to_resend"] == 0
    assert len(smtp_server.messages) == 6


def test_resend_one_failed_digest(run, three_failed, smtp_server):
    dry = run("resend", READERS[1], "--dry-run")
    assert dry.exit_code == 0
    assert (
        f"would resend the {PERIOD} digest to {READERS[1]} (failed, 554 5.7.1 message rejected)" in dry.stdout
    )
    assert smtp_server.received_by(READERS[1]) == []

    result = run("resend", READERS[1])
    assert result.exit_code == 0, result.output
    assert (
        f"resent the {PERIOD} digest to {READERS[1]} (failed, 554 5.7.1 message rejected) as <"
        in result.stdout
    )
    assert len(smtp_server.received_by(READERS[1])) == 1
    assert run("resend", READERS[1]).exit_code == 0
    assert len(smtp_server.received_by(READERS[1])) == 1


def test_a_resend_that_fails_again_says_so(run, three_failed, smtp_server):
    smtp_server.script(READERS[2], "data:554 5.7.1 still no")
    result = run("resend", READERS[2])
    assert result.exit_code == 1
    assert (
        one_line_error(result)
        == f"not sent: the {PERIOD} digest to {READERS[2]} is now failed: 554 5.7.1 still no"
    )
    bulk = run("resend", "--failed", "--period", PERIOD)
    assert bulk.exit_code == 0  # the scripted refusal was used up: all three go out now


def _content(raw: bytes) -> tuple[str, str, str]:
    message = message_from_bytes(raw, policy=policy.default)
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return message["Message-ID"], SIGNED_LINK.sub("/<link>", text), SIGNED_LINK.sub("/<link>", html)


def test_force_resends_the_same_content_and_is_audited(run, sending, smtp_server, seed):
    drain(sending)
    [original] = smtp_server.received_by(READERS[0])
    # Trending moves on: a newer ranking with other papers and other evidence.
    seed.scoring_run([(f"2612.0{n:04d}", f"Newer paper {n}", "+999 upvotes / 24h") for n in range(8)])

    result = run("resend", READERS[0], "--force", "--reason", "lost in their spam folder")
    assert result.exit_code == 0, result.output
    assert "written to the audit log" in result.stdout
    _, second = smtp_server.received_by(READERS[0])
    # Only the Date header and the links' signing times may differ (and not within one second).
    assert _content(second.data) == _content(original.data)
    assert "Paper number 0" in _content(second.data)[1] and "Newer paper" not in _content(second.data)[1]

    [entry] = seed.audit("resend.force")
    assert entry.actor.startswith("cli") and entry.reason == "lost in their spam folder"
    assert entry.delivery_id is not None and entry.subscriber_id is not None
    assert entry.details["outcome"] == "sent" and entry.details["period_key"] == PERIOD
    assert entry.details["message_id"] == _content(original.data)[0]
    assert len(smtp_server.messages) == len(READERS) + 1


def test_a_resend_after_new_votes_keeps_the_papers_and_reasons(run, cli_settings, seed, smtp_server):
    """Votes change the next ranking; a forced resend of a planned digest keeps its papers and "why"."""
    settings = replace(cli_settings, mail_url=smtp_server.url)
    config.use_settings(settings)
    seed.scoring_run([(f"2611.0{n:04d}", f"Paper number {n}", f"+{50 - n} upvotes / 24h") for n in range(8)])
    seed.subscriber(READERS[0])
    assert run("subscribers", "like", READERS[0], "2611.00003").exit_code == 0
    assert run("digest", "plan", "--period", PERIOD).exit_code == 0
    drain(settings)
    [original] = smtp_server.received_by(READERS[0])
    assert 'close to "Paper number 3" you liked' in _content(original.data)[1]

    assert run("subscribers", "like", READERS[0], "2611.00003", "--less").exit_code == 0
    assert run("subscribers", "like", READERS[0], "2611.00000").exit_code == 0
    result = run("resend", READERS[0], "--force", "--reason", "asked again")
    assert result.exit_code == 0, result.output
    _, second = smtp_server.received_by(READERS[0])
    assert _content(second.data) == _content(original.data)


def test_a_forced_resend_prints_its_words_and_logs_only_with_verbose(sending, smtp_server, tmp_path):
    drain(sending)
    environ = subprocess_env(
        settings_environ(tmp_path, database_url=sending.database_url, mail_url=smtp_server.url)
    )

    def resend(*flags: str) -> subprocess.CompletedProcess[str]:
        command = [
            sys.executable,
            "-m",
            "papermail",
            *flags,
            "resend",
            READERS[0],
            "--force",
            "--reason",
            "lost",
        ]
        return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=120, check=False)

    quiet = resend()
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.startswith(f"✓ resent the {PERIOD} digest to {READERS[0]} (sent) as <")
    assert quiet.stderr == ""
    verbose = resend("--verbose")
    assert verbose.returncode == 0 and " INFO " in verbose.stderr and " INFO " not in verbose.stdout


def test_never_mails_someone_who_left_even_with_force(run, sending, smtp_server, seed):
    smtp_server.script(READERS[2], "data:554")
    drain(sending)
    assert run("subscribers", "remove", READERS[0]).exit_code == 0
    seed.suppress(READERS[1], "complaint")
    assert run("subscribers", "remove", READERS[2]).exit_code == 0

    unsubscribed = run("resend", READERS[0], "--force")
    assert unsubscribed.exit_code == 1
    assert one_line_error(unsubscribed) == (
        f"{READERS[0]} is unsubscribed; papermail never mails it, even with --force"
    )
    suppressed = run("resend", READERS[1], "--force")
    assert one_line_error(suppressed) == (
        f"{READERS[1]} is on the suppression list (complaint); papermail never mails it, even with --force"
    )
    bulk = run("resend", "--period", PERIOD, "--failed")
    assert bulk.exit_code == 0
    assert "1 left alone (unsubscribed, bounced or suppressed)" in bulk.stdout
    assert len(smtp_server.messages) == len(READERS) - 1
    assert statuses(seed)[READERS[2]] == "failed"  # its story is kept
    assert seed.audit("resend.force") == []


def test_resend_races_a_worker_and_one_message_goes_out(run, three_failed, smtp_server, seed):
    with session_scope(three_failed) as session:
        failed = list(session.scalars(sa.select(Delivery.id).where(Delivery.status == DeliveryStatus.FAILED)))
    worker = threading.Thread(
        target=send_batch, args=(three_failed, failed), kwargs={"claimable": {DeliveryStatus.FAILED}}
    )
    worker.start()
    result = run("resend", "--period", PERIOD, "--failed")
    worker.join()
    assert result.exit_code == 0, result.output
    assert smtp_server.count_by_recipient() == dict.fromkeys(READERS, 1)


def test_a_paused_period_must_be_resumed_first(run, three_failed, smtp_server, seed):
    with session_scope(three_failed) as session:
        digest_id = session.scalar(sa.select(Digest.id).where(Digest.period_key == PERIOD))
        pause_digests(session, [digest_id], "50 failures in a row: 421 too busy")
    status = run("digest", "status")
    assert "sending is paused since" in status.stderr and "421 too busy" in status.stderr
    refused = run("resend", READERS[1])
    assert refused.exit_code == 1
    assert one_line_error(refused) == (
        f"sending for {PERIOD} is paused (50 failures in a row: 421 too busy); "
        f"resume it first with: papermail digest resume --period {PERIOD}"
    )
    resumed = run("digest", "resume", "--period", PERIOD)
    assert resumed.exit_code == 0 and f"resumed {PERIOD}" in resumed.stdout
    assert run("resend", "--period", PERIOD, "--failed").exit_code == 0
    assert smtp_server.count_by_recipient() == dict.fromkeys(READERS, 1)
    assert (
        run("digest", "resume", "--period", PERIOD).stdout
        == f"· nothing to resume: {PERIOD} is not paused (the circuit breaker pauses a period)\n"
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["nobody@example.org"],
            1,
            "no subscriber nobody@example.org; see who is there with `papermail subscribers list`, "
            "or add them with `papermail subscribers add nobody@example.org`",
        ),
        ([READERS[0], "--period", "2026-W61"], 2, "period 2026-W61 is not a valid ISO week"),
        ([READERS[0], "--period", "2026-W01"], 1, f"no digest for {READERS[0]} in 2026-W01"),
        (["--failed", "--force"], 2, "--force resends one EMAIL's digest; it can't be used with --failed"),
        ([], 2, "give an EMAIL, or --failed to resend a whole period (not both)"),
        ([READERS[0], "--failed"], 2, "give an EMAIL, or --failed to resend a whole period (not both)"),
    ],
)
def test_resend_errors_are_one_line(run, sending, args, code, message):
    result = run("resend", *args)
    assert result.exit_code == code
    assert one_line_error(result) == message


def test_resend_before_any_digest(run, seed):
    seed.subscriber("a@example.org")
    assert one_line_error(run("resend", "a@example.org")) == "no digest for a@example.org yet"
    assert "no digest has been planned yet" in run("resend", "--failed").stdout


def test_digest_plan_is_idempotent(run, sending, seed):
    again = run("digest", "plan", "--period", PERIOD)
    assert again.exit_code == 0
    assert f"nothing new to plan in {PERIOD}" in again.stdout
    counts = json.loads(run("digest", "plan", "--period", PERIOD, "--json").stdout)
    assert counts == {"planned": 0, "periods": {PERIOD: {**_zeros(), "pending": len(READERS)}}}


def _zeros() -> dict[str, int]:
    return {status.value: 0 for status in DeliveryStatus}


def test_digest_plan_without_a_ranking_is_one_line(run, seed):
    result = run("digest", "plan")
    assert result.exit_code == 1
    assert one_line_error(result).startswith("nothing to plan: no papers yet: nothing has been fetched")


def test_plan_now_plans_only_who_is_due(run, cli_settings, seed):
    seed.scoring_run([("2611.00001", "Paper", "")])
    seed.subscriber("due@example.org")
    result = run("digest", "plan", "--json")
    planned = json.loads(result.stdout)
    # Monday 08:00 UTC has passed this week (or last): exactly one row, planned once.
    assert planned["planned"] == 1
    assert json.loads(run("digest", "plan", "--json").stdout)["planned"] == 0
    assert clock.now() - timedelta(days=8) < seed.scalar(sa.select(Delivery.scheduled_for)) <= clock.now()


def test_digest_send_without_a_worker_times_out_clearly(run, sending):
    result = run("digest", "send", "--period", PERIOD, "--wait", "--timeout", "1")
    assert result.exit_code == 1
    assert f"planned 0 new deliveries ({PERIOD}); queued {len(READERS)} for the workers" in result.stdout
    assert one_line_error(result) == (
        f"still sending after 1s; is a worker running (`papermail worker`)? "
        f"see: papermail digest status --period {PERIOD}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_digest_send_waits_for_a_real_worker(run, sending, smtp_server, worker_factory, tmp_path):
    smtp_server.script(READERS[5], "data:554")
    worker_factory(settings_environ(tmp_path, database_url=sending.database_url, mail_url=smtp_server.url))
    result = run("digest", "send", "--period", PERIOD, "--wait", "--timeout", "60")
    assert result.exit_code == 1, result.output
    assert one_line_error(result) == f"1 not delivered; see: papermail digest status --period {PERIOD}"
    assert re.search(r"sent\s*│\s*5", result.stdout)
    assert smtp_server.count_by_recipient() == dict.fromkeys(READERS[:5], 1)

    assert run("resend", "--period", PERIOD, "--failed").exit_code == 0
    done = run("digest", "send", "--period", PERIOD, "--wait", "--timeout", "60")
    assert done.exit_code == 0, done.output
    assert "nothing to send" in done.stdout
    assert smtp_server.count_by_recipient() == dict.fromkeys(READERS, 1)
