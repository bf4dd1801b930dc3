"""A delivered digest as a web page ("View in browser"): exactly the papers that were mailed.

The link is signed for one subscriber and one delivery (its own token purpose, as long-lived as the
unsubscribe link). The page reads the delivery's frozen ``paper_ids`` with the evidence of the run
its digest pinned, the same way :mod:`papermail.digest.render` does for the email, so the two show
the same papers in the same order with the same "why" lines. Once the subscriber is erased their
deliveries are gone, and so is the page.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail import tokens
from papermail.config import Settings
from papermail.db.models import Delivery, Digest, Subscriber
from papermail.digest.render import (
    DigestRequest,
    PaperCard,
    describe_period,
    digest_lead,
    for_reader,
    load_cards,
)


@dataclass(frozen=True)
class DeliveryPage:
    """What the browser view of one delivery shows."""

    subscriber: Subscriber  # its id and address sign the page's preferences and unsubscribe links
    period_label: str
    lead: str
    topics: tuple[str, ...]
    papers: list[PaperCard]


def delivery_page(session: Session, settings: Settings, token: str) -> DeliveryPage | None:
    """The delivery a view link was made for, or None if the link is bad or the delivery is gone."""
    try:
        payload = tokens.read_token(settings, tokens.Purpose.VIEW, token)
    except tokens.BadToken:
        return None
    if len(payload) != 2 or not isinstance(payload[1], int):
        return None
    subscriber_id, delivery_id = payload
    found = session.execute(
        sa.select(Delivery, Subscriber, Digest.scoring_run_id)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .join(Digest, Digest.id == Delivery.digest_id)
        .where(Delivery.id == delivery_id, Delivery.subscriber_id == subscriber_id)
    ).first()
    if found is None:
        return None
    delivery, subscriber, run_id = found
    request = DigestRequest.of_delivery(delivery, subscriber, run_id)
    cards = load_cards(session, [request])
    # The same "why" lines as the email, personal reasons included.
    papers = [
        for_reader(cards[(run_id, pid)], request, pid) for pid in delivery.paper_ids if (run_id, pid) in cards
    ]
    return DeliveryPage(
        subscriber=subscriber,
        period_label=describe_period(delivery.period_key),
        lead=digest_lead(subscriber, len(papers)),
        topics=tuple(sorted(subscriber.topics)),
        papers=papers,
    )
