"""The kinds of email papermail sends, each a small function that returns its template's context.

``@email_kind("name")`` turns such a function into one that renders ``templates/email/<name>/``
for a recipient and returns the :class:`OutgoingEmail` to hand to the :class:`~papermail.mail.outbox.Outbox`.
Digests are the exception in shape only: ``papermail.digest.render`` renders them in bulk, a
batch at a time, from the same templates, and they leave through the same outbox.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from papermail.mail.message import OutgoingEmail
from papermail.mail.templates import get_templates

# RFC 3834: tells autoresponders not to answer a message no person wrote.
AUTOMATIC = {"Auto-Submitted": "auto-generated"}

CONFIRM_FOOTER = (
    "You received this email because someone asked to subscribe this address to "
    "papermail. If it wasn't you, ignore it: you won't hear from us again."
)


def email_kind(
    template: str, *, headers: Mapping[str, str] = AUTOMATIC
) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., OutgoingEmail]]:
    """Make a context function into one that renders ``template`` for a recipient ``to``."""

    def decorate(context_of: Callable[..., dict[str, Any]]) -> Callable[..., OutgoingEmail]:
        @functools.wraps(context_of)
        def render(to: str, **arguments: Any) -> OutgoingEmail:
            rendered = get_templates().render(template, context_of(**arguments))
            return OutgoingEmail(
                to=to, subject=rendered.subject, text=rendered.text, html=rendered.html, headers=dict(headers)
            )

        return render

    return decorate


@email_kind("confirm-subscription")
def confirm_subscription(
    *, confirm_url: str, valid_hours: float, base_url: str, postal_address: str
) -> dict[str, Any]:
    """The double opt-in email: one link; no text the visitor typed, and no one-click header."""
    return {
        "confirm_url": confirm_url,
        "valid_hours": round(valid_hours),
        "base_url": base_url,
        "footer_reason": CONFIRM_FOOTER,
        "postal_address": postal_address,
    }


@email_kind("preferences-link")
def preferences_link(*, link_url: str, base_url: str, postal_address: str) -> dict[str, Any]:
    """A fresh preferences link, asked for from a digest's web page (which shows none itself)."""
    return {
        "link_url": link_url,
        "base_url": base_url,
        "footer_reason": "You received this email because someone asked for a link to your preferences.",
        "postal_address": postal_address,
    }
