"""``POST /webhooks/<provider>``: bounce and complaint events from SES, Postmark, Mailgun, SendGrid.

The view only adapts: papermail.bounces.webhooks authenticates and reads the request, and each
event goes through the same policy as a bounce message, in one transaction. Answers are JSON:
200 with what was done, or a 4xx whose ``error`` says what was wrong with the request.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Blueprint, request
from sqlalchemy.orm import Session

from papermail import clock
from papermail.bounces import ProcessResult, apply_provider_event
from papermail.bounces.signatures import WebhookRejected
from papermail.bounces.webhooks import read_webhook
from papermail.web.context import web_context
from papermail.web.csrf import csrf_exempt

log = logging.getLogger(__name__)
blueprint = Blueprint("webhooks", __name__, url_prefix="/webhooks")

# SendGrid batches events and SES includes the returned message's headers: well above a form's size.
MAX_WEBHOOK_BYTES = 1024 * 1024


@blueprint.before_request
def _allow_event_batches() -> None:
    request.max_content_length = MAX_WEBHOOK_BYTES


@blueprint.post("/<provider>")
@csrf_exempt
def receive(provider: str) -> tuple[dict[str, object], int]:
    context = web_context()
    try:
        events = read_webhook(context.settings, provider, request.headers, request.get_data(), clock.now())
    except WebhookRejected as exc:
        log.info("webhook %s refused (%d): %s", provider[:20], exc.status, exc.reason)
        return {"error": exc.reason}, exc.status

    def apply(session: Session) -> list[ProcessResult]:
        return [apply_provider_event(session, event) for event in events]

    try:
        outcomes = context.transaction(apply)
    except sa.exc.IntegrityError:
        # The provider's retry of this very request ran beside it and recorded the events first:
        # once more, they are all already seen.
        outcomes = context.transaction(apply)
    actions = [recipient.action.value for outcome in outcomes for recipient in outcome.recipients]
    return {"events": len(events), "actions": actions}, 200
