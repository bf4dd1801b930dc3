"""Each provider's bounce and complaint payloads, read into :class:`ProviderEvent` values.

The shapes are the ones each provider documents: SES notifications (inside SNS), Mailgun's
``event-data``, SendGrid's event list and Postmark's bounce and spam-complaint webhooks; the
generic webhook takes papermail's own verdicts (docs/bounces.md). Events that say nothing about
deliverability (opens, clicks) are skipped. A payload missing what an event needs is a 400.

Event ids are the provider's own; where one notification names several recipients, the address
is appended, so each recipient's event is deduplicated on its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from papermail.bounces.outcome import ProviderEvent
from papermail.bounces.signatures import WebhookRejected, epoch_time, iso_time
from papermail.db.models import BounceVerdict as V

MAX_ADDRESS = 320
_STATUS_CODE = re.compile(r"\b[245]\.\d{1,3}\.\d{1,3}\b")
_FIELD_TEXT = 2000  # diagnostics longer than this are cut: they are shown, never parsed


def _get(payload: Any, name: str, kind: type | tuple[type, ...] = str, *, where: str = "payload") -> Any:
    """``payload[name]`` if present and of ``kind``; else a 400 naming the field."""
    if not isinstance(payload, dict) or not isinstance(payload.get(name), kind) or payload[name] == "":
        raise WebhookRejected(400, f"{where} needs a {name!r} field")
    return payload[name]


def _object(payload: dict[str, Any], name: str) -> dict[str, Any]:
    """``payload[name]`` if it is an object, else an empty one (for optional details)."""
    value = payload.get(name)
    return value if isinstance(value, dict) else {}


def _optional_text(payload: dict[str, Any], name: str) -> str | None:
    value = payload.get(name)
    return str(value)[:_FIELD_TEXT] if value not in (None, "") else None


def _address(raw: Any, where: str) -> str:
    text = str(raw).strip().strip("<>")
    if "@" not in text or len(text) > MAX_ADDRESS or any(ch in text for ch in "\r\n\0 "):
        raise WebhookRejected(400, f"{where} has no valid recipient address")
    return text


def _status_code(payload: dict[str, Any], name: str) -> str | None:
    """The enhanced status code (RFC 3463, e.g. ``5.1.1``) in ``payload[name]``, if it holds one."""
    found = _STATUS_CODE.search(str(payload.get(name) or ""))
    return found.group(0) if found else None


def _status_class(status: object) -> str:
    return str(status or "")[:1]


def _verp_token(envelope_sender: Any) -> str | None:
    """Our VERP token from an envelope sender ``bounces+<token>@domain`` passed on by a provider."""
    local = str(envelope_sender or "").strip("<>").rpartition("@")[0]
    return local.partition("+")[2] or None


# -- Amazon SES (the Message of an SNS Notification) -----------------------------------------------

SES_SENDER_SUBTYPES = {"MessageTooLarge", "ContentRejected", "AttachmentRejected"}


def ses_events(message_text: object, sns_message_id: str) -> list[ProviderEvent]:
    """The events in one SES notification (bounce, complaint or delivery)."""
    try:
        notice = json.loads(message_text) if isinstance(message_text, str) else None
    except ValueError:
        notice = None
    if not isinstance(notice, dict):
        raise WebhookRejected(400, "the SNS Message is not an SES JSON notification")
    kind = notice.get("notificationType") or notice.get("eventType")
    token = _verp_token(_object(notice, "mail").get("source"))
    if kind == "Bounce":
        return _ses_bounce(_get(notice, "bounce", dict), token, sns_message_id)
    if kind == "Complaint":
        return _ses_complaint(_get(notice, "complaint", dict), token, sns_message_id)
    if kind == "Delivery":
        delivery = _get(notice, "delivery", dict)
        return [
            _ses_event(sns_message_id, address, V.NONE, token, delivery, "smtpResponse")
            for address in _get(delivery, "recipients", list, where="delivery")
        ]
    return []  # opens, clicks, sends, rejects before sending: nothing about the address


def _ses_bounce(bounce: dict[str, Any], token: str | None, message_id: str) -> list[ProviderEvent]:
    bounce_type, subtype = bounce.get("bounceType"), bounce.get("bounceSubType")
    events = []
    for recipient in _get(bounce, "bouncedRecipients", list, where="bounce"):
        status = _status_code(recipient, "status") if isinstance(recipient, dict) else None
        if subtype in SES_SENDER_SUBTYPES or (status or "").startswith("5.7."):
            verdict = V.SENDER
        elif bounce_type == "Permanent":
            verdict = V.HARD
        else:  # Transient, Undetermined
            verdict = V.SOFT
        address = _get(recipient, "emailAddress", where="bouncedRecipients[]")
        event = _ses_event(message_id, address, verdict, token, bounce, None, recipient=recipient)
        events.append(event)
    return events


def _ses_complaint(complaint: dict[str, Any], token: str | None, message_id: str) -> list[ProviderEvent]:
    verdict = V.NONE if complaint.get("complaintFeedbackType") == "not-spam" else V.COMPLAINT
    recipients = _get(complaint, "complainedRecipients", list, where="complaint")
    addresses = [_get(r, "emailAddress", where="complainedRecipients[]") for r in recipients]
    return [_ses_event(message_id, address, verdict, token, complaint) for address in addresses]


def _ses_event(
    message_id: str,
    address: Any,
    verdict: V,
    token: str | None,
    body: dict[str, Any],
    diagnostic_field: str | None = None,
    *,
    recipient: dict[str, Any] | None = None,
) -> ProviderEvent:
    address = _address(address, "an SES recipient")
    recipient = recipient or {}
    diagnostic = _optional_text(recipient, "diagnosticCode") or _optional_text(body, diagnostic_field or "")
    return ProviderEvent(
        provider="ses",
        event_id=f"{body.get('feedbackId') or message_id}/{address.lower()}",
        address=address,
        verdict=verdict,
        status=_status_code(recipient, "status"),
        verp_token=token,
        occurred_at=iso_time(body["timestamp"]) if body.get("timestamp") else None,
        raw=body,
        diagnostic=diagnostic,
        reporting_mta=_optional_text(body, "reportingMTA"),
    )


# -- Mailgun ---------------------------------------------------------------------------------------

MAILGUN_REASONS = {"suppress-complaint": V.COMPLAINT, "suppress-unsubscribe": V.NONE, "espblock": V.SENDER}


def mailgun_events(event_data: dict[str, Any]) -> list[ProviderEvent]:
    """The event in a Mailgun webhook's ``event-data``."""
    event = _get(event_data, "event", where="event-data")
    status_block = _object(event_data, "delivery-status")
    if event == "failed":
        verdict = MAILGUN_REASONS.get(str(event_data.get("reason")))
        if verdict is None:
            verdict = V.HARD if event_data.get("severity") == "permanent" else V.SOFT
    elif event == "complained":
        verdict = V.COMPLAINT
    elif event == "delivered":
        verdict = V.NONE
    else:
        return []
    status = _status_code(status_block, "enhanced-code")
    if verdict == V.HARD and status and status.startswith("5.7."):
        verdict = V.SENDER
    return [
        ProviderEvent(
            provider="mailgun",
            event_id=_get(event_data, "id", where="event-data"),
            address=_address(_get(event_data, "recipient", where="event-data"), "event-data"),
            verdict=verdict,
            status=status,
            verp_token=_verp_token(_object(event_data, "envelope").get("sender")),
            occurred_at=epoch_time(event_data["timestamp"]) if "timestamp" in event_data else None,
            raw=event_data,
            diagnostic=_optional_text(status_block, "message") or _optional_text(status_block, "description"),
            reporting_mta=_optional_text(status_block, "mx-host"),
        )
    ]


# -- SendGrid --------------------------------------------------------------------------------------

SENDGRID_CLASSIFICATIONS = {
    "Invalid Address": V.HARD,
    "Mailbox Unavailable": V.SOFT,
    "Technical": V.SOFT,
    "Frequency or Volume": V.SOFT,
    "Content": V.SENDER,
    "Reputation": V.SENDER,
}
SENDGRID_DROPS = {
    "Bounced Address": V.HARD,
    "Invalid": V.HARD,
    "Spam Reporting Address": V.COMPLAINT,
    "Unsubscribed Address": V.NONE,
}


def sendgrid_events(events: Any) -> list[ProviderEvent]:
    """The deliverability events in a SendGrid event-webhook batch (a JSON list)."""
    if not isinstance(events, list):
        raise WebhookRejected(400, "a SendGrid batch is a JSON list of events")
    found = []
    for event in events:
        verdict = _sendgrid_verdict(event if isinstance(event, dict) else {})
        if verdict is None:
            continue
        found.append(
            ProviderEvent(
                provider="sendgrid",
                event_id=_get(event, "sg_event_id", where="a SendGrid event"),
                address=_address(_get(event, "email", where="a SendGrid event"), "a SendGrid event"),
                verdict=verdict,
                status=_status_code(event, "status"),
                occurred_at=epoch_time(event["timestamp"]) if "timestamp" in event else None,
                raw=event,
                diagnostic=_optional_text(event, "reason") or _optional_text(event, "response"),
            )
        )
    return found


def _sendgrid_verdict(event: dict[str, Any]) -> V | None:
    kind = event.get("event")
    if kind == "bounce":
        classified = SENDGRID_CLASSIFICATIONS.get(str(event.get("bounce_classification")))
        if classified is not None:
            return classified
        if event.get("type") == "blocked" or str(event.get("status", "")).startswith("5.7."):
            return V.SENDER
        return V.SOFT if _status_class(event.get("status")) == "4" else V.HARD
    if kind == "dropped":
        return SENDGRID_DROPS.get(str(event.get("reason")), V.SENDER)
    return {"deferred": V.SOFT, "spamreport": V.COMPLAINT, "delivered": V.NONE}.get(str(kind))


# -- Postmark --------------------------------------------------------------------------------------

POSTMARK_TYPES = {
    "HardBounce": V.HARD,
    "BadEmailAddress": V.HARD,
    "ManuallyDeactivated": V.HARD,
    "SoftBounce": V.SOFT,
    "Transient": V.SOFT,
    "DnsError": V.SOFT,
    "Unknown": V.SOFT,
    "SpamNotification": V.SENDER,
    "Blocked": V.SENDER,
    "DMARCPolicy": V.SENDER,
    "VirusNotification": V.SENDER,
    "SMTPApiError": V.SENDER,
    "InboundError": V.SENDER,
    "TemplateRenderingFailed": V.SENDER,
    "SpamComplaint": V.COMPLAINT,
}


def postmark_events(record: Any) -> list[ProviderEvent]:
    """The event in one Postmark webhook call (bounce, spam complaint or delivery)."""
    kind = _get(record, "RecordType", where="a Postmark webhook")
    if kind == "Bounce":
        verdict = POSTMARK_TYPES.get(str(record.get("Type")), V.NONE)  # auto-responders, subscribes, …
        when = record.get("BouncedAt")
    elif kind == "SpamComplaint":
        verdict, when = V.COMPLAINT, record.get("BouncedAt")
    elif kind == "Delivery":
        verdict, when = V.NONE, record.get("DeliveredAt")
    else:
        return []  # opens, clicks, subscription changes
    # Bounces and complaints have an ID of their own; a delivery is known by its message and recipient.
    if kind == "Delivery":
        address = _address(_get(record, "Recipient"), "a Postmark Delivery")
        event_id = f"{_get(record, 'MessageID')}/{address.lower()}"
    else:
        address = _address(_get(record, "Email"), f"a Postmark {kind}")
        event_id = str(_get(record, "ID", (int, str), where=f"a Postmark {kind}"))
    return [
        ProviderEvent(
            provider="postmark",
            event_id=f"{kind}:{event_id}",
            address=address,
            verdict=verdict,
            occurred_at=iso_time(when) if when else None,
            raw=record,
            diagnostic=_optional_text(record, "Details") or _optional_text(record, "Description"),
        )
    ]


# -- generic: papermail's own format ---------------------------------------------------------------

GENERIC_VERDICTS = {verdict.value: verdict for verdict in V}


def generic_events(payload: Any, check_time: Callable[[datetime], None]) -> list[ProviderEvent]:
    """``{"events": [{"id", "address", "verdict", "timestamp", ...}]}`` (see docs/bounces.md)."""
    events = _get(payload, "events", list)
    found = []
    for event in events:
        verdict = GENERIC_VERDICTS.get(str(_get(event, "verdict", where="an event")))
        if verdict is None:
            raise WebhookRejected(400, f"an event's verdict must be one of {', '.join(GENERIC_VERDICTS)}")
        timestamp = _get(event, "timestamp", (str, int, float), where="an event")
        when = iso_time(timestamp) if isinstance(timestamp, str) else epoch_time(timestamp)
        check_time(when)
        found.append(
            ProviderEvent(
                provider="generic",
                event_id=str(_get(event, "id", (str, int), where="an event"))[:200],
                address=_address(_get(event, "address", where="an event"), "an event"),
                verdict=verdict,
                status=_status_code(event, "status"),
                verp_token=_verp_token(event.get("envelope_sender")),
                occurred_at=when,
                raw=event,
                diagnostic=_optional_text(event, "diagnostic"),
                reporting_mta=_optional_text(event, "reporting_mta"),
            )
        )
    return found
