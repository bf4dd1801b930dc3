"""Reading one provider webhook request: authenticate it, check it is fresh, return its events.

Every provider's endpoint is off until its secret is set (a request to it is a 404). Replays are
refused by a timestamp window where the provider signs a time (``PAPERMAIL_WEBHOOK_MAX_AGE``), and
made harmless by event ids: :func:`papermail.bounces.apply_provider_event` acts on each id once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from papermail.bounces import sns
from papermail.bounces.outcome import ProviderEvent
from papermail.bounces.signatures import (
    WebhookRejected,
    check_fresh,
    epoch_time,
    verify_basic,
    verify_bearer,
    verify_mailgun,
    verify_sendgrid,
)
from papermail.bounces.webhook_events import (
    generic_events,
    mailgun_events,
    postmark_events,
    sendgrid_events,
    ses_events,
)
from papermail.config import Settings

SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"

Reader = Callable[[Settings, Mapping[str, str], bytes, datetime], list[ProviderEvent]]


def parse_json(body: bytes) -> Any:
    """The request body as JSON; anything else (or absurdly nested JSON) is a 400."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise WebhookRejected(400, "the body is not valid JSON") from None


def read_ses(
    settings: Settings, headers: Mapping[str, str], body: bytes, now: datetime
) -> list[ProviderEvent]:
    message = parse_json(body)
    if not isinstance(message, dict):
        raise WebhookRejected(400, "an SNS message is a JSON object")
    sns.verify_message(settings, message, now)
    if message["Type"] == "SubscriptionConfirmation":
        sns.confirm_subscription(settings, message)
        return []
    if message["Type"] == "UnsubscribeConfirmation":
        return []
    return ses_events(message.get("Message"), str(message.get("MessageId", "")))


def read_mailgun(
    settings: Settings, headers: Mapping[str, str], body: bytes, now: datetime
) -> list[ProviderEvent]:
    payload = parse_json(body)
    signature = payload.get("signature") if isinstance(payload, dict) else None
    if not isinstance(signature, dict) or not isinstance(payload.get("event-data"), dict):
        raise WebhookRejected(400, "a Mailgun webhook has 'signature' and 'event-data' objects")
    parts = [str(signature.get(name, "")) for name in ("timestamp", "token", "signature")]
    verify_mailgun(settings.mailgun_signing_key, *parts)
    check_fresh(epoch_time(parts[0]), now, settings.webhook_max_age_seconds)
    return mailgun_events(payload["event-data"])


def read_sendgrid(
    settings: Settings, headers: Mapping[str, str], body: bytes, now: datetime
) -> list[ProviderEvent]:
    timestamp = headers.get(SENDGRID_TIMESTAMP, "")
    verify_sendgrid(settings.sendgrid_public_key, timestamp, body, headers.get(SENDGRID_SIGNATURE, ""))
    check_fresh(epoch_time(timestamp), now, settings.webhook_max_age_seconds)
    return sendgrid_events(parse_json(body))


def read_postmark(
    settings: Settings, headers: Mapping[str, str], body: bytes, now: datetime
) -> list[ProviderEvent]:
    # Postmark signs nothing and sends no time of its own: replays are harmless through event ids.
    verify_basic(settings.postmark_webhook_auth, headers.get("Authorization"))
    return postmark_events(parse_json(body))


def read_generic(
    settings: Settings, headers: Mapping[str, str], body: bytes, now: datetime
) -> list[ProviderEvent]:
    verify_bearer(settings.webhook_secret, headers.get("Authorization"))
    return generic_events(
        parse_json(body), lambda when: check_fresh(when, now, settings.webhook_max_age_seconds)
    )


READERS: dict[str, tuple[Reader, Callable[[Settings], object]]] = {
    "ses": (read_ses, lambda s: s.ses_topic_arns),
    "mailgun": (read_mailgun, lambda s: s.mailgun_signing_key),
    "sendgrid": (read_sendgrid, lambda s: s.sendgrid_public_key),
    "postmark": (read_postmark, lambda s: s.postmark_webhook_auth),
    "generic": (read_generic, lambda s: s.webhook_secret),
}


def read_webhook(
    settings: Settings, provider: str, headers: Mapping[str, str], body: bytes, now: datetime
) -> list[ProviderEvent]:
    """The authenticated events of one request to ``/webhooks/<provider>``; WebhookRejected if not."""
    reader, configured = READERS.get(provider, (None, lambda _s: None))
    if reader is None or not configured(settings):
        raise WebhookRejected(404, f"no {provider} webhook is configured here")
    return reader(settings, headers, body, now)
