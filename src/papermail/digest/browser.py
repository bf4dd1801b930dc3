"""A delivered digest as a web page ("View in browser"): exactly the papers that were mailed.

The link is signed for one subscriber, one delivery and the address it went to, for a year; the
same token signs the page's and the email's vote buttons. The page hands out no preferences or
unsubscribe link (view links get forwarded); it offers to email the owner one.
The page reads the delivery's frozen ``paper_ids`` with the evidence of the run
its digest pinned, the same way :mod:`papermail.digest.render` does for the email, so the two show
the same papers in the same order with the same "why" lines. Once the subscriber is erased their
deliveries are gone, and so is the page.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from papermail.config import Settings
from papermail.db.models import Delivery, Subscriber
from papermail.digest.cards import PaperCard, load_cards, reader_cards
from papermail.digest.period import describe_period
from papermail.digest.render import digest_lead
from papermail.digest.request import DigestRequest, delivery_query
from papermail.subscribers import links


@dataclass(frozen=True)
class DeliveryLink:
    """The delivery a view or vote link was made for, and its subscriber."""

    delivery: Delivery
    subscriber: Subscriber
    run_id: int | None
    token: str | None  # the link's compact token, which also signs votes; None for a link from before


@dataclass(frozen=True)
class DeliveryPage:
    """What the browser view of one delivery shows."""

    link: DeliveryLink
    period_label: str
    lead: str
    topics: tuple[str, ...]
    papers: list[PaperCard]
    places: list[int]  # each paper's place in the delivery, as vote links name it

    @property
    def subscriber(self) -> Subscriber:
        return self.link.subscriber


def read_delivery_link(session: Session, settings: Settings, token: str) -> DeliveryLink | None:
    """The delivery of a view link (or a vote link's token); None if bad, expired, or not theirs.

    A link is bound to the address it was mailed to, and dies when the address changes or is erased.
    Links from before that carry no address keep working for the year they were signed for.
    """
    if links.DeliveryTokens.is_one(token):
        return _read_delivery_token(session, settings, token)
    try:
        subscriber_id, delivery_id, *tag = links.CompactTokens(settings, links.Purpose.VIEW).read(token)
        compact = token
    except (links.BadToken, ValueError):
        try:
            subscriber_id, delivery_id = links.read_token(settings, links.Purpose.VIEW, token)
        except (links.BadToken, ValueError):
            return None
        compact, tag = None, []
    if not isinstance(delivery_id, int) or (compact and len(tag) != 1):
        return None
    found = session.execute(
        delivery_query().where(Delivery.id == delivery_id, Delivery.subscriber_id == subscriber_id)
    ).first()
    if found is None or (compact and tag != [links.address_tag(found[1].email)]):
        return None
    return DeliveryLink(found[0], found[1], found[2], compact)


def _read_delivery_token(session: Session, settings: Settings, token: str) -> DeliveryLink | None:
    signed = links.DeliveryTokens(settings)
    try:
        found = session.execute(delivery_query().where(Delivery.id == signed.delivery_id(token))).first()
        if found is None:
            return None
        signed.check(token, found[1].email)
    except links.BadToken:
        return None
    return DeliveryLink(found[0], found[1], found[2], token)


def delivery_page(session: Session, settings: Settings, token: str) -> DeliveryPage | None:
    """The delivery a view link was made for, or None if the link is bad or the delivery is gone."""
    link = read_delivery_link(session, settings, token)
    if link is None:
        return None
    delivery, subscriber, run_id = link.delivery, link.subscriber, link.run_id
    request = DigestRequest.of_delivery(delivery, subscriber, run_id)
    # The same papers as the email, with the same "why" lines, personal reasons included.
    shown = reader_cards(load_cards(session, [request]), request)
    return DeliveryPage(
        link=link,
        period_label=describe_period(delivery.period_key),
        lead=digest_lead(subscriber, len(shown.papers)),
        topics=tuple(sorted(subscriber.topics)),
        papers=shown.papers,
        places=shown.places,
    )
