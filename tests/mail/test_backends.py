"""One contract for every mail backend (smtp, file, console, memory), then what only SMTP does."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from papermail.mail.backends import (
    MEMORY_OUTBOX,
    ConsoleBackend,
    Envelope,
    FileBackend,
    InvalidMessage,
    MailBackend,
    MemoryBackend,
    PermanentSendError,
    SMTPBackend,
    TransientSendError,
    backend_from_url,
)
from tests.support.smtp_server import ScriptedSMTPServer

SENDER = "digest@papermail.test"


def message(subject: str = "Hello", body: str = "Line one.\r\n.Line starting with a dot\r\n") -> bytes:
    return f"From: {SENDER}\r\nTo: a@example.org\r\nSubject: {subject}\r\n\r\n{body}".encode()


@dataclass
class Case:
    """A backend and a way to read back what it delivered: [(recipient, message bytes)]."""

    make: Callable[[], MailBackend]
    delivered: Callable[[], list[tuple[str, bytes]]]


def _read_console(stream: io.StringIO) -> list[tuple[str, bytes]]:
    found = []
    for chunk in stream.getvalue().split("---------- to ")[1:]:
        recipient, _, text = chunk.partition("\n")
        found.append((recipient, text.removesuffix("\n").replace("\n", "\r\n").encode()))
    return found


def _read_outbox(directory: Path) -> list[tuple[str, bytes]]:
    found = []
    for path in sorted(directory.glob("*.eml")):
        head, _, rest = path.read_bytes().partition(b"\r\n")
        found.append((head.decode().removeprefix("X-Envelope-To: "), rest))
    return found


@pytest.fixture(params=["smtp", "file", "console", "memory"])
def case(request, tmp_path) -> Iterator[Case]:
    if request.param == "smtp":
        server = ScriptedSMTPServer().start()
        yield Case(
            lambda: backend_from_url(server.url, timeout=5, max_per_connection=3),
            lambda: [(m.recipient, m.data) for m in server.messages],
        )
        server.stop()
    elif request.param == "file":
        yield Case(
            lambda: backend_from_url(f"file://{tmp_path}/outbox"), lambda: _read_outbox(tmp_path / "outbox")
        )
    elif request.param == "console":
        stream = io.StringIO()
        yield Case(lambda: ConsoleBackend(stream), lambda: _read_console(stream))
    else:
        MEMORY_OUTBOX.clear()
        yield Case(lambda: backend_from_url("memory:"), lambda: [(e.recipient, m) for e, m in MEMORY_OUTBOX])
        MEMORY_OUTBOX.clear()


def test_a_message_arrives_as_sent_and_the_reply_says_250(case):
    with case.make() as backend:
        reply = backend.send(Envelope(SENDER, "a@example.org"), message())
    assert reply.startswith("250")
    assert case.delivered() == [("a@example.org", message())]


def test_one_open_backend_sends_many_in_order(case):
    with case.make() as backend:
        for n in range(7):
            backend.send(Envelope(SENDER, f"r{n}@example.org"), message(subject=f"n{n}"))
    assert [r for r, _ in case.delivered()] == [f"r{n}@example.org" for n in range(7)]
    assert all(m == message(subject=f"n{n}") for n, (_, m) in enumerate(case.delivered()))


@pytest.mark.parametrize(
    "recipient",
    ["a@example.org\r\nRCPT TO:<evil@example.net>", "a@example.org>", "<a@example.org", "not-an-address", ""],
)
def test_an_address_that_could_smuggle_a_command_is_refused_before_sending(case, recipient):
    with case.make() as backend:
        with pytest.raises(InvalidMessage):
            backend.send(Envelope(SENDER, recipient), message())
        backend.send(Envelope(SENDER, "b@example.org"), message())  # still usable
    assert [r for r, _ in case.delivered()] == ["b@example.org"]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"Subject: x\nBcc: evil@example.net\r\n\r\nbody\r\n", "bare CR or LF"),
        (b"Subject: x\r\n\r\nbody\rmore\r\n", "bare CR or LF"),
        (b"Subject: x\r\n\r\n" + b"y" * 999 + b"\r\n", "line over 998"),
        (b"Subject: x only headers\r\n", "no header/body separator"),
    ],
)
def test_a_malformed_message_is_refused_and_never_delivered(case, raw, problem):
    with case.make() as backend, pytest.raises(InvalidMessage, match=problem):
        backend.send(Envelope(SENDER, "a@example.org"), raw)
    assert case.delivered() == []


def test_a_non_ascii_address_is_delivered(case):
    with case.make() as backend:
        backend.send(Envelope(SENDER, "zoë@example.org"), message())
    assert case.delivered() == [("zoë@example.org", message())]


def test_open_and_close_are_idempotent(case):
    backend = case.make()
    backend.open()
    backend.open()
    backend.send(Envelope(SENDER, "a@example.org"), message())
    backend.close()
    backend.close()
    backend.send(Envelope(SENDER, "b@example.org"), message())  # reopens as needed
    backend.close()
    assert [r for r, _ in case.delivered()] == ["a@example.org", "b@example.org"]


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("smtp://127.0.0.1:2525", SMTPBackend),
        ("smtp+starttls://u:p@relay.example.org:587", SMTPBackend),
        ("smtps://relay.example.org", SMTPBackend),
        ("file:///tmp/outbox", FileBackend),
        ("console:", ConsoleBackend),
        ("memory:", MemoryBackend),
    ],
)
def test_the_url_chooses_the_backend(url, kind):
    assert isinstance(backend_from_url(url), kind)


# -- SMTP only --------------------------------------------------------------------------------------


@pytest.fixture
def smtp_server() -> Iterator[ScriptedSMTPServer]:
    server = ScriptedSMTPServer().start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("step", "error", "refused", "code"),
    [
        ("rcpt:550", PermanentSendError, True, 550),
        ("rcpt:552", TransientSendError, False, 552),  # RFC 5321: too many recipients is temporary
        ("rcpt:451", TransientSendError, False, 451),
        ("data:554", PermanentSendError, False, 554),
        ("data:451", TransientSendError, False, 451),
        ("data:421", TransientSendError, False, 421),
        ("data:drop", TransientSendError, False, None),
    ],
)
def test_smtp_replies_are_classified_by_stage(smtp_server, step, error, refused, code):
    smtp_server.script("a@example.org", step)
    with backend_from_url(smtp_server.url, timeout=5) as backend:
        with pytest.raises(error) as raised:
            backend.send(Envelope(SENDER, "a@example.org"), message())
        assert getattr(raised.value, "recipient_refused", False) is refused
        assert raised.value.code == code
        # Whatever happened, the next message goes through (on a new connection if need be).
        backend.send(Envelope(SENDER, "b@example.org"), message())
    assert [m.recipient for m in smtp_server.messages] == ["b@example.org"]


def test_smtp_reconnects_after_its_per_connection_cap(smtp_server):
    with backend_from_url(smtp_server.url, timeout=5, max_per_connection=2) as backend:
        for n in range(5):
            backend.send(Envelope(SENDER, f"r{n}@example.org"), message())
    assert smtp_server.connections == 3
    assert [m.connection for m in smtp_server.messages] == [1, 1, 2, 2, 3]


def test_an_unreachable_relay_is_a_transient_error_within_the_timeout():
    backend = backend_from_url("smtp://127.0.0.1:9", timeout=1)
    with pytest.raises(TransientSendError, match="cannot connect"):
        backend.send(Envelope(SENDER, "a@example.org"), message())
