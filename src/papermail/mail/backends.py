"""Mail backends share one small interface, chosen by ``PAPERMAIL_MAIL_URL``.

``smtp://``, ``smtp+starttls://``, ``smtps://`` deliver to a relay; ``file:///dir`` writes one ``.eml``
per message; ``console:`` prints; ``memory:`` keeps messages in :data:`MEMORY_OUTBOX` for tests.
A backend is a context manager: open once per batch, ``send`` many, close.
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
    """Try again later: 4xx replies, timeouts, refused or dropped connections."""


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


class MailBackend(Protocol):
    """What every backend does. ``send`` returns the server's reply text on success."""

    def open(self) -> None: ...

    def close(self) -> None: ...

    def send(self, envelope: Envelope, message: bytes) -> str: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


class _Backend:
    """Context-manager plumbing shared by the backends."""

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

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
        try:
            if self.security == "ssl":
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.security == "starttls":
                conn.starttls(context=ssl.create_default_context())
            if self.username:
                conn.login(self.username, self.password or "")
        except smtplib.SMTPResponseException as exc:
            raise _classify(exc.smtp_code, exc.smtp_error) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientSendError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
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

    def send(self, envelope: Envelope, message: bytes) -> str:
        if self._conn is not None and self._sent_on_connection >= self.max_per_connection:
            self.close()
        self.open()
        assert self._conn is not None
        try:
            refused = self._conn.sendmail(envelope.sender, [envelope.recipient], message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            raise _classify(code, reply, at_rcpt=True) from exc
        except smtplib.SMTPResponseException as exc:
            # The server may have closed on us (421); start the next send on a fresh connection.
            self._drop()
            raise _classify(exc.smtp_code, exc.smtp_error) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise TransientSendError(f"connection lost: {exc}") from exc
        if refused:  # pragma: no cover - only for multi-recipient sends
            code, reply = next(iter(refused.values()))
            raise _classify(code, reply, at_rcpt=True)
        self._sent_on_connection += 1
        return "250 OK"

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _classify(code: int, reply: bytes | str, *, at_rcpt: bool = False) -> SendError:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    reason = f"{code} {text}".strip()
    # RFC 5321: 552 at RCPT ("too many recipients"/mailbox full) is to be treated as temporary.
    if 400 <= code < 500 or (at_rcpt and code == 552):
        return TransientSendError(reason, code)
    if 500 <= code < 600:
        return PermanentSendError(reason, code, recipient_refused=at_rcpt)
    return TransientSendError(f"unexpected reply {reason}", code)


class FileBackend(_Backend):
    """Writes each message to ``<directory>/<time>-<uuid>.eml``, atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def send(self, envelope: Envelope, message: bytes) -> str:
        self.open()
        name = f"{clock.now():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex}.eml"
        tmp = self.directory / f".{name}.tmp"
        # Envelope recipient first, as an mbox-style line, so tests and people can tell who got it.
        tmp.write_bytes(f"X-Envelope-To: {envelope.recipient}\r\n".encode() + message)
        os.replace(tmp, self.directory / name)
        return f"250 written {name}"


class ConsoleBackend(_Backend):
    """Prints each message, for trying things out."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream

    def send(self, envelope: Envelope, message: bytes) -> str:
        out = self.stream or sys.stdout
        out.write(f"---------- to {envelope.recipient}\n")
        out.write(message.decode("utf-8", "replace").replace("\r\n", "\n"))
        out.write("\n")
        out.flush()
        return "250 printed"


MEMORY_OUTBOX: list[tuple[Envelope, bytes]] = []


class MemoryBackend(_Backend):
    """Appends to :data:`MEMORY_OUTBOX`; for tests within one process."""

    def send(self, envelope: Envelope, message: bytes) -> str:
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
