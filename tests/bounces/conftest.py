"""Fixtures for the bounce intake channels: committed databases, a private Redis queue, a live server.

The sending fixtures (tests/support/send_env.py) are reused: a SendEnv is a fresh committed database
(other threads and processes see its data), a private Redis queue and the settings pointing at both.
"""

from __future__ import annotations

import imaplib
import os
import smtplib
import socket
import ssl
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from papermail.bounces.smtp_intake import InboundServer
from papermail.db.models import InboundMessage
from tests.conftest import free_port, wait_for
from tests.support.send_env import SendEnv

BOUNCE_ADDRESS = "bounces@papermail.test"


def wait_for_smtp(port: int, what: str, timeout: float = 60) -> None:
    """Wait until an SMTP server answers on the loopback ``port``."""

    def answers() -> bool:
        try:
            smtplib.SMTP("127.0.0.1", port, timeout=2).quit()
            return True
        except OSError:
            return False

    wait_for(answers, timeout=timeout, message=what)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def intake_env(send_env_factory, backend) -> Callable[..., SendEnv]:
    """``intake_env(**settings)``: a SendEnv with the bounce address set, on each backend."""

    def make(**overrides: str) -> SendEnv:
        return send_env_factory(backend, bounce_address=BOUNCE_ADDRESS, **overrides)

    return make


@dataclass
class LiveInbound:
    """An inbound server on a free loopback port, for one test."""

    server: InboundServer
    port: int


@pytest.fixture
def start_inbound() -> Iterator[Callable[[SendEnv], LiveInbound]]:
    started: list[InboundServer] = []

    def start(env: SendEnv) -> LiveInbound:
        port = free_port()
        server = InboundServer(env.settings, "127.0.0.1", port)
        server.start()
        started.append(server)
        return LiveInbound(server, port)

    yield start
    for server in started:
        server.stop()


def stored_messages(env: SendEnv) -> list[InboundMessage]:
    with env.session() as session:
        return list(session.scalars(sa.select(InboundMessage).order_by(InboundMessage.id)))


def dsn_for(
    recipient: str, *, status: str = "5.1.1", verp: str | None = None, message_id: str = "", action: str = ""
) -> bytes:
    """A minimal RFC 3464 report saying ``recipient`` failed with ``status`` (``action``: failed for
    a 5.x.x status, delayed for others, unless given)."""
    boundary = uuid.uuid4().hex
    message_id = message_id or f"<{uuid.uuid4().hex}@relay.test>"
    returned = f"Return-Path: <{verp}>\r\n" if verp else ""
    action = action or ("failed" if status.startswith("5") else "delayed")
    return (
        f"From: Mail Delivery System <MAILER-DAEMON@relay.test>\r\n"
        f"To: {verp or BOUNCE_ADDRESS}\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {message_id}\r\n"
        f"Auto-Submitted: auto-replied\r\n"
        f"MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n'
        f"\r\n"
        f"--{boundary}\r\n"
        f"Content-Type: text/plain\r\n\r\n"
        f"Your message could not be delivered to {recipient}.\r\n"
        f"--{boundary}\r\n"
        f"Content-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; relay.test\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} mailbox unavailable\r\n"
        f"--{boundary}\r\n"
        f"Content-Type: text/rfc822-headers\r\n\r\n"
        f"{returned}"
        f"To: {recipient}\r\n"
        f"Subject: Your papers this week\r\n"
        f"--{boundary}--\r\n"
    ).encode()


# -- the bounce mailbox: scripts/services runs dovecot with IMAPS on 127.0.0.1:10993 ------------------

DOVECOT_DIR = Path(os.environ.get("PAPERMAIL_TEST_DOVECOT_DIR", "/tmp/papermail-test-dovecot"))
IMAP_PORT = 10993
IMAP_PASSWORD = "papermail-test"  # dovecot takes any user name with it; each gets its own Maildir


@dataclass
class BounceMailbox:
    """A fresh mailbox on the test dovecot: its URL, CA file, and a way to put messages in it."""

    user: str

    @property
    def url(self) -> str:
        return f"imaps://{self.user}:{IMAP_PASSWORD}@127.0.0.1:{IMAP_PORT}/INBOX"

    @property
    def ca_file(self) -> str:
        return str(DOVECOT_DIR / "cert.pem")

    def _connect(self) -> imaplib.IMAP4_SSL:
        context = ssl.create_default_context(cafile=self.ca_file)
        imap = imaplib.IMAP4_SSL("127.0.0.1", IMAP_PORT, ssl_context=context, timeout=10)
        imap.login(self.user, IMAP_PASSWORD)
        return imap

    def append(self, *messages: bytes) -> None:
        with self._connect() as imap:
            for message in messages:
                status, _ = imap.append("INBOX", None, None, message)
                assert status == "OK"

    def count(self) -> int:
        with self._connect() as imap:
            status, data = imap.select("INBOX")
            assert status == "OK"
            return int(data[0])


@pytest.fixture
def mailbox() -> BounceMailbox:
    try:
        socket.create_connection(("127.0.0.1", IMAP_PORT), timeout=2).close()
    except OSError as exc:  # fail loudly: CI must never skip the IMAP tests
        raise RuntimeError(
            f"dovecot is not running on 127.0.0.1:{IMAP_PORT}: run scripts/services ({exc})"
        ) from exc
    return BounceMailbox(f"bounces-{uuid.uuid4().hex[:12]}")
