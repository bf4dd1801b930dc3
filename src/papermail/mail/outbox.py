"""The outbox: the one way every email leaves papermail, whatever its kind.

For each email, in this order:

1. **build** the MIME message (a Message-ID given by the caller is kept, so a retry reuses it);
2. **sign** it with DKIM when ``PAPERMAIL_DKIM_KEY_PATH`` is set;
3. **pace** it: the pacer passed in blocks until the shared send rate allows one more message
   (the pacer may keep its timeline in the database; this package never touches it);
4. **hand it over**: the caller's ``hand_over`` callback records, durably, that the message may
   now reach the relay (and may refuse: the recipient left meanwhile, or the claim was lost);
5. **send** it through the backend, and **classify** the reply as sent, transient (try again
   later) or permanent.

The caller records the :class:`Outcome`; the outbox keeps no state but the open connection.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Protocol, Self

from papermail import clock
from papermail.config import Settings
from papermail.mail.backends import (
    Envelope,
    InvalidMessage,
    MailBackend,
    PermanentSendError,
    TransientSendError,
    backend_from_url,
)
from papermail.mail.dkim import DkimSigner, signer_for
from papermail.mail.message import MessageBuildError, OutgoingEmail, build_message, make_message_id


class SendPacer(Protocol):
    """Spaces messages out to the configured send rate."""

    def wait_turn(self) -> None:
        """Block until this process may hand one more message to the relay."""


class NoPacing:
    """``PAPERMAIL_SEND_RATE=0``: send as fast as the relay accepts."""

    def wait_turn(self) -> None:
        pass


class Verdict(enum.StrEnum):
    SENT = "sent"  # the relay took it (2xx)
    TRANSIENT = "transient"  # 4xx, a timeout or a dropped connection: try again later
    PERMANENT = "permanent"  # 5xx: don't try again
    INVALID = "invalid"  # the message itself can't be sent (not buildable, or not fit for the wire)
    NOT_HANDED_OVER = "not_handed_over"  # the caller's hand-over refused: nothing was sent


@dataclass(frozen=True)
class Outcome:
    """What became of one email, for the caller to record."""

    verdict: Verdict
    message_id: str
    reply: str | None = None  # the relay's reply, or why it failed
    code: int | None = None  # its SMTP code, when there was one
    recipient_refused: bool = False  # a permanent refusal of the address itself (a hard bounce)
    connection_failed: bool = False  # a transient failure of the relay itself, not of this message

    @property
    def relay_failed(self) -> bool:
        """A failure that says something about the relay's health (what a circuit breaker counts)."""
        return self.verdict == Verdict.TRANSIENT or (
            self.verdict == Verdict.PERMANENT and not self.recipient_refused
        )


def _always_hand_over(_message_id: str) -> bool:
    return True


class Outbox:
    """An open connection to the relay with the signer and pacer every message goes through."""

    def __init__(
        self, *, mail_from: str, backend: MailBackend, pacer: SendPacer, signer: DkimSigner | None
    ) -> None:
        self.mail_from, self.backend, self.pacer, self.signer = mail_from, backend, pacer, signer
        self.sender_address = parseaddr(mail_from)[1]

    @classmethod
    def from_settings(cls, settings: Settings, *, pacer: SendPacer) -> Self:
        """The outbox the settings describe: their relay, From address and DKIM key."""
        backend = backend_from_url(
            settings.mail_url,
            timeout=settings.smtp_timeout_seconds,
            max_per_connection=settings.smtp_max_per_connection,
        )
        return cls(mail_from=settings.mail_from, backend=backend, pacer=pacer, signer=signer_for(settings))

    def send(
        self,
        email: OutgoingEmail,
        *,
        message_id: str | None = None,
        hand_over: Callable[[str], bool] = _always_hand_over,
        return_path: str | None = None,
    ) -> Outcome:
        """Build, sign, pace, hand over and send one email; classify what happened.

        ``return_path`` is the envelope sender when the message has its own (VERP); else the From.
        """
        message_id = message_id or make_message_id(self.mail_from)
        try:
            message = build_message(email, mail_from=self.mail_from, message_id=message_id, date=clock.now())
            if self.signer is not None:
                message = self.signer.sign(message)
        except (MessageBuildError, ValueError, TypeError) as exc:
            return Outcome(Verdict.INVALID, message_id, f"message could not be built: {exc}")
        self.pacer.wait_turn()
        if not hand_over(message_id):
            return Outcome(Verdict.NOT_HANDED_OVER, message_id)
        try:
            envelope = Envelope(return_path or self.sender_address, email.to, verp=return_path is not None)
            reply = self.backend.send(envelope, message)
        except InvalidMessage as exc:
            return Outcome(Verdict.INVALID, message_id, exc.reason, exc.code)
        except PermanentSendError as exc:
            return Outcome(
                Verdict.PERMANENT, message_id, exc.reason, exc.code, recipient_refused=exc.recipient_refused
            )
        except TransientSendError as exc:
            return Outcome(
                Verdict.TRANSIENT, message_id, exc.reason, exc.code, connection_failed=exc.connection_failed
            )
        return Outcome(Verdict.SENT, message_id, reply, _reply_code(reply))

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reply_code(reply: str) -> int | None:
    head = reply[:3]
    return int(head) if head.isdigit() else None
