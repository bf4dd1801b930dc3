"""The outbox every email leaves through: build, pace, hand over, send, and the reply classified."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from papermail.mail.backends import backend_from_url
from papermail.mail.message import OutgoingEmail
from papermail.mail.outbox import Outbox, Verdict

FROM = "papermail <digest@papermail.test>"


@dataclass
class CountingPacer:
    """A pacer that lets everything through and counts the turns it gave."""

    turns: int = 0

    def wait_turn(self) -> None:
        self.turns += 1


@pytest.fixture
def outbox(smtp_server):
    pacer = CountingPacer()
    with Outbox(
        mail_from=FROM, backend=backend_from_url(smtp_server.url, timeout=2), pacer=pacer, signer=None
    ) as box:
        yield box, pacer


def email_to(address: str, **overrides) -> OutgoingEmail:
    return OutgoingEmail(**{"to": address, "subject": "Hello", "text": "Hi.\n", **overrides})


@pytest.mark.parametrize(
    ("script", "verdict", "code", "refused", "connection"),
    [
        ([], Verdict.SENT, 250, False, False),
        (["rcpt:550 5.1.1 no such user"], Verdict.PERMANENT, 550, True, False),
        (["data:554 rejected"], Verdict.PERMANENT, 554, False, False),
        (["data:451 try later"], Verdict.TRANSIENT, 451, False, False),
        (["data:421 closing"], Verdict.TRANSIENT, 421, False, True),
    ],
)
def test_each_reply_is_classified(outbox, smtp_server, script, verdict, code, refused, connection):
    box, pacer = outbox
    smtp_server.script("ada@example.org", *script)
    outcome = box.send(email_to("ada@example.org"))
    assert (outcome.verdict, outcome.code) == (verdict, code)
    assert (outcome.recipient_refused, outcome.connection_failed) == (refused, connection)
    assert outcome.relay_failed == (
        verdict == Verdict.TRANSIENT or (verdict == Verdict.PERMANENT and not refused)
    )
    assert pacer.turns == 1


def test_a_refused_hand_over_sends_nothing(outbox, smtp_server):
    box, pacer = outbox
    handed: list[str] = []
    outcome = box.send(
        email_to("ada@example.org"), hand_over=lambda message_id: handed.append(message_id) and False
    )
    assert outcome.verdict == Verdict.NOT_HANDED_OVER and handed == [outcome.message_id]
    assert smtp_server.messages == [] and pacer.turns == 1


def test_a_message_that_cannot_be_built_is_invalid_and_takes_no_turn(outbox, smtp_server):
    box, pacer = outbox
    outcome = box.send(email_to("ada@example.org", subject="Hello\r\nBcc: someone@example.org"))
    assert outcome.verdict == Verdict.INVALID and "could not be built" in outcome.reply
    assert smtp_server.messages == [] and pacer.turns == 0


def test_a_given_message_id_is_kept_so_a_retry_reuses_it(outbox, smtp_server):
    box, _ = outbox
    outcome = box.send(email_to("ada@example.org"), message_id="<fixed@papermail.test>")
    assert outcome.message_id == "<fixed@papermail.test>"
    assert b"Message-ID: <fixed@papermail.test>" in smtp_server.received_by("ada@example.org")[0].data
