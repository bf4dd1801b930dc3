"""Turning a rendered email into RFC 5322 bytes ready for SMTP."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr


class MessageBuildError(ValueError):
    """The message cannot be built (for example a header value with a line break)."""


@dataclass(frozen=True)
class OutgoingEmail:
    """A rendered email: who it is for, its parts, and extra headers such as List-Unsubscribe."""

    to: str
    subject: str
    text: str
    html: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


def sender_domain(mail_from: str) -> str:
    """The domain of a From setting like ``papermail <digest@example.org>``."""
    return parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"


def make_message_id(mail_from: str) -> str:
    """A globally unique Message-ID on our own domain."""
    return f"<{uuid.uuid4().hex}@{sender_domain(mail_from)}>"


def build_message(email: OutgoingEmail, *, mail_from: str, message_id: str, date: datetime) -> bytes:
    """Serialise ``email`` as CRLF MIME bytes: text first, HTML last (multipart/alternative)."""
    try:
        msg = EmailMessage(policy=policy.SMTP)
        msg["Date"] = format_datetime(date)
        msg["Message-ID"] = message_id
        msg["From"] = mail_from
        msg["To"] = email.to
        msg["Subject"] = email.subject
        for name, value in email.headers.items():
            msg[name] = value
        msg.set_content(email.text, cte="quoted-printable")
        if email.html is not None:
            msg.add_alternative(email.html, subtype="html", cte="quoted-printable")
        return msg.as_bytes()
    except (ValueError, TypeError) as exc:
        raise MessageBuildError(str(exc)) from exc
