"""What reading a report finds and what the policy did: the vocabularies of ``bounces import --json``."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from papermail.db.models import BounceVerdict


class ReportKind(enum.StrEnum):
    BOUNCE = "bounce"  # names failed (or delayed) recipients
    COMPLAINT = "complaint"  # ARF, or a provider's complaint event
    DELIVERY_REPORT = "delivery-report"  # a DSN reporting success (delivered, relayed, expanded)
    AUTO_REPLY = "auto-reply"  # vacation, out of office, autoresponders
    NOT_A_REPORT = "not-a-report"  # mail that is none of these
    UNPARSED = "unparsed"  # looks like a report, but no recipient could be read from it


class Action(enum.StrEnum):
    SUPPRESSED = "suppressed"  # status bounced, never mailed again
    UNSUBSCRIBED = "unsubscribed"  # a complaint: unsubscribed and suppressed for good
    COUNTED = "counted"  # a soft bounce added to the score (or a sender fault shown to the operator)
    ALREADY_SEEN = "already-seen"  # the same report (or provider event) was acted on before
    NOT_A_SUBSCRIBER = "not-a-subscriber"  # recorded, never acted on
    NONE = "none"  # nothing to do (success, auto-reply, already suppressed)


@dataclass(frozen=True)
class ProviderEvent:
    """One event from a provider's webhook, already authenticated by the caller."""

    provider: str  # "ses", "postmark", "mailgun", "sendgrid", "generic"
    event_id: str  # the provider's own id for the event: a replay of it changes nothing
    address: str
    verdict: BounceVerdict
    status: str | None = None  # enhanced status code, e.g. "5.1.1"
    verp_token: str | None = None  # our token, when the provider passes the envelope sender on
    occurred_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    diagnostic: str | None = None
    reporting_mta: str | None = None


@dataclass
class RecipientOutcome:
    """One recipient's verdict and the action taken."""

    address: str
    verdict: BounceVerdict
    action: Action
    status: str | None = None
    diagnostic: str | None = None
    subscriber_id: int | None = None
    delivery_id: int | None = None
    confirmation_id: int | None = None
    event_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "status": self.status,
            "verdict": self.verdict.value,
            "action": self.action.value,
        }


@dataclass
class ProcessResult:
    """What one inbound message (or provider event) was, and what happened to each recipient."""

    kind: ReportKind
    recipients: list[RecipientOutcome] = field(default_factory=list)
    inbound_message_id: int | None = None
    reporting_mta: str | None = None
    duplicate: bool = False  # the same report was processed before: nothing changed
