"""Mail backends share one small interface, chosen by ``PAPERMAIL_MAIL_URL``.

``smtp://``, ``smtp+starttls://``, ``smtps://`` deliver to a relay; ``file:///dir`` writes one ``.eml``
per message; ``console:`` prints; ``memory:`` keeps messages in :data:`MEMORY_OUTBOX` for tests.
A backend is a context manager: open once per batch, ``send`` many, close. Every backend checks the
envelope and the wire format the same way before it delivers (CRLF only, no line over 998 octets, no
line break in an address), so a message the memory backend accepts in a test is one the SMTP
backend would put on the wire.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Protocol, Self
from urllib.parse import unquote, urlsplit

from papermail import clock


class SendError(Exception):
    """A message was not accepted. ``code`` is the SMTP reply code, when there was one."""

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class TransientSendError(SendError):
    """Try again later: 4xx replies, timeouts, refused or dropped connections.

    ``connection_failed`` says the relay itself is unreachable or went away (no connection, a
    timeout, a drop, a 421), as opposed to a reply about this one message.
    """

    def __init__(self, reason: str, code: int | None = None, *, connection_failed: bool = False):
        super().__init__(reason, code)
        self.connection_failed = connection_failed


class PermanentSendError(SendError):
    """Do not retry: 5xx replies. ``recipient_refused`` marks a 5xx to RCPT (a hard bounce)."""

    def __init__(self, reason: str, code: int | None = None, *, recipient_refused: bool = False):
        super().__init__(reason, code)
        self.recipient_refused = recipient_refused


@dataclass(frozen=True)
class Envelope:
    """Who the SMTP transaction is from and to; the message headers may say otherwise."""

    sender: str
    recipient: str
    # The sender is this message's own return path (VERP): the file backend shows it as a
    # delivering MTA would, in a Return-Path header.
    verp: bool = False


class InvalidMessage(PermanentSendError):
    """The envelope or message bytes are malformed; nothing was sent, and retrying can't help."""


# RFC 5322 2.1.1: a line is at most 998 octets plus CRLF.
MAX_LINE_OCTETS = 998
_FORBIDDEN_IN_ADDRESS = frozenset("\r\n\0<> \t")


def check_envelope(envelope: Envelope) -> None:
    """Raise InvalidMessage if an envelope address could smuggle a command or another recipient."""
    for role, address in (("sender", envelope.sender), ("recipient", envelope.recipient)):
        if not address or "@" not in address or any(ch in _FORBIDDEN_IN_ADDRESS for ch in address):
            raise InvalidMessage(f"invalid envelope {role} {address!r}")


def check_wire_format(message: bytes) -> None:
    """Raise InvalidMessage unless ``message`` is CRLF-only, with lines of at most 998 octets."""
    crlf = message.count(b"\r\n")
    if message.count(b"\n") != crlf or message.count(b"\r") != crlf:
        raise InvalidMessage("message has a bare CR or LF; the wire format is CRLF only")
    if b"\r\n\r\n" not in message:
        raise InvalidMessage("message has no header/body separator")
    if len(message) > MAX_LINE_OCTETS and max(map(len, message.split(b"\r\n"))) > MAX_LINE_OCTETS:
        raise InvalidMessage(f"message has a line over {MAX_LINE_OCTETS} octets")


class MailBackend(Protocol):
    """What every backend does. ``send`` returns the server's reply text on success."""

    def open(self) -> None: ...

    def close(self) -> None: ...

    def send(self, envelope: Envelope, message: bytes) -> str: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


class _Backend:
    """What the backends share: checking before delivering, and the context-manager plumbing."""

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def send(self, envelope: Envelope, message: bytes) -> str:
        """Check the envelope and wire format, then deliver; return the reply text (e.g. ``250 …``)."""
        check_envelope(envelope)
        check_wire_format(message)
        return self._deliver(envelope, message)

    def _deliver(self, envelope: Envelope, message: bytes) -> str:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()


class SMTPBackend(_Backend):
    """Delivers over one reused SMTP connection, reconnecting after ``max_per_connection`` sends."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: str = "plain",  # "plain", "starttls" or "ssl"
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        max_per_connection: int = 100,
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self.username, self.password = username, password
        self.timeout = timeout
        self.max_per_connection = max_per_connection
        self._conn: smtplib.SMTP | None = None
        self._sent_on_connection = 0

    def open(self) -> None:
        if self._conn is not None:
            return
        conn: smtplib.SMTP | None = None
        try:
            if self.security == "ssl":
                conn = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.security == "starttls":
                conn.starttls(context=ssl.create_default_context())
            if self.username:
                conn.login(self.username, self.password or "")
        except (OSError, smtplib.SMTPException) as exc:
            if conn is not None:  # connected, then TLS or login failed: don't leak the socket
                conn.close()
            # Whatever the code (a 554 greeting, a failed login), it is about the relay, not the
            # message: retry later, and let the circuit breaker stop a run that keeps failing.
            raise TransientSendError(
                f"cannot connect to {self.host}:{self.port}: {exc}", connection_failed=True
            ) from exc
        self._conn = conn
        self._sent_on_connection = 0

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except (OSError, smtplib.SMTPException):
            conn.close()

    def _deliver(self, envelope: Envelope, message: bytes) -> str:
        if self._conn is not None and self._sent_on_connection >= self.max_per_connection:
            self.close()
        self.open()
        conn = self._conn
        assert conn is not None
        # One transaction step by step (not sendmail), so every refusal is classified by the stage
        # it came at: only a 5xx to RCPT says the address itself is bad.
        try:
            conn.ehlo_or_helo_if_needed()  # mail() doesn't; sendmail() would
            # The addresses were checked (check_envelope), so they go out as they are: smtplib's
            # mail()/rcpt() would re-parse them with email.utils.parseaddr on every message.
            options = "".join(f" {option}" for option in self._mail_options(conn, envelope))
            code, reply = conn.docmd("mail", f"FROM:<{envelope.sender}>{options}")
            if code != 250:
                raise self._refused(code, reply, at_rcpt=False)
            code, reply = conn.docmd("rcpt", f"TO:<{envelope.recipient}>")
            if code not in (250, 251):
                raise self._refused(code, reply, at_rcpt=True)
            code, reply = conn.docmd("data")
            if code != 354:
                raise self._refused(code, reply, at_rcpt=False)
            conn.send(_dot_stuffed(message))
            code, reply = conn.getreply()
            if code != 250:
                raise self._refused(code, reply, at_rcpt=False)
        except SendError:
            raise
        except (OSError, smtplib.SMTPException) as exc:  # timeouts, resets, a drop after DATA
            self._drop()
            raise TransientSendError(
                f"connection lost: {exc or type(exc).__name__}", connection_failed=True
            ) from exc
        self._sent_on_connection += 1
        return _reply_text(code, reply)

    def _mail_options(self, conn: smtplib.SMTP, envelope: Envelope) -> list[str]:
        if (envelope.sender + envelope.recipient).isascii():
            return []
        if not conn.has_extn("smtputf8"):
            raise InvalidMessage(f"{self.host} does not accept non-ASCII addresses (no SMTPUTF8)")
        conn.command_encoding = "utf-8"  # what mail() does when it sends SMTPUTF8
        return ["SMTPUTF8"]

    def _refused(self, code: int, reply: bytes | str, *, at_rcpt: bool) -> SendError:
        """Classify a refusal and leave the connection fit for the next message (or drop it)."""
        if code == 421:  # the server is closing the channel
            self._drop()
        else:
            try:
                self._conn.rset()  # type: ignore[union-attr]
            except (OSError, smtplib.SMTPException):
                self._drop()
        return _classify(code, reply, at_rcpt=at_rcpt)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _dot_stuffed(message: bytes) -> bytes:
    """The DATA payload: lines starting with "." doubled (RFC 5321 4.5.2), then the final ".".

    What smtplib.data() does with a regular expression over the whole message; a bytes replace
    is several times cheaper on a 100 KB digest (the message is CRLF-only, checked before).
    """
    stuffed = message.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


def _reply_text(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return f"{code} {' '.join(text.split())}".strip()


def _classify(code: int, reply: bytes | str, *, at_rcpt: bool = False) -> SendError:
    reason = _reply_text(code, reply)
    # RFC 5321: 552 at RCPT ("too many recipients"/mailbox full) is to be treated as temporary.
    if 400 <= code < 500 or (at_rcpt and code == 552):
        return TransientSendError(reason, code, connection_failed=code == 421)
    if 500 <= code < 600:
        return PermanentSendError(reason, code, recipient_refused=at_rcpt)
    return TransientSendError(f"unexpected reply {reason}", code)


class FileBackend(_Backend):
    """Writes each message to ``<directory>/<time>-<uuid>.eml``, atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def _deliver(self, envelope: Envelope, message: bytes) -> str:
        self.open()
        name = f"{clock.now():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex}.eml"
        tmp = self.directory / f".{name}.tmp"
        # Envelope recipient first, as an mbox-style line, so tests and people can tell who got it.
        head = f"X-Envelope-To: {envelope.recipient}\r\n"
        if envelope.verp:
            head += f"Return-Path: <{envelope.sender}>\r\n"
        tmp.write_bytes(head.encode() + message)
        os.replace(tmp, self.directory / name)
        return f"250 written {name}"


class ConsoleBackend(_Backend):
    """Prints each message, for trying things out."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream

    def _deliver(self, envelope: Envelope, message: bytes) -> str:
        out = self.stream or sys.stdout
        out.write(f"---------- to {envelope.recipient}\n")
        out.write(message.decode("utf-8", "replace").replace("\r\n", "\n"))
        out.write("\n")
        out.flush()
        return "250 printed"


MEMORY_OUTBOX: list[tuple[Envelope, bytes]] = []


class MemoryBackend(_Backend):
    """Appends to :data:`MEMORY_OUTBOX`; for tests within one process."""

    def _deliver(self, envelope: Envelope, message: bytes) -> str:
        MEMORY_OUTBOX.append((envelope, message))
        return "250 kept"


def backend_from_url(url: str, *, timeout: float = 30.0, max_per_connection: int = 100) -> MailBackend:
    """Build the backend named by a ``PAPERMAIL_MAIL_URL``."""
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme in ("smtp", "smtps", "smtp+starttls"):
        security = {"smtp": "plain", "smtps": "ssl", "smtp+starttls": "starttls"}[scheme]
        default_port = {"plain": 25, "ssl": 465, "starttls": 587}[security]
        return SMTPBackend(
            parts.hostname or "localhost",
            parts.port or default_port,
            security=security,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            timeout=timeout,
            max_per_connection=max_per_connection,
        )
    if scheme == "file":
        return FileBackend(Path(unquote(parts.path)))
    if scheme == "console":
        return ConsoleBackend()
    if scheme == "memory":
        return MemoryBackend()
    raise ValueError(f"unsupported mail URL scheme {scheme!r}")


def check_connection(url: str, timeout: float = 10.0) -> str:
    """Open and close the backend (for SMTP: connect, TLS, login) without sending; return a note."""
    backend = backend_from_url(url, timeout=timeout)
    try:
        with backend:
            pass
    except SendError as exc:
        raise ConnectionError(exc.reason) from exc
    except TimeoutError as exc:  # pragma: no cover - smtplib wraps most of these
        raise ConnectionError(f"timed out: {exc}") from exc
    return "ok"
