"""The digests a subscriber received lately, with their papers, for the preferences page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail.db.models import Delivery, DeliveryStatus, Paper

RECENT_DIGESTS = 5


@dataclass(frozen=True)
class SentDigest:
    """A digest a subscriber received, for the preferences page."""

    period_key: str
    sent_at: datetime
    papers: list[Paper]


def recent_digests(session: Session, subscriber_id: int, limit: int = RECENT_DIGESTS) -> list[SentDigest]:
    """The subscriber's last sent digests, newest first, with their papers (two queries)."""
    deliveries = session.scalars(
        sa.select(Delivery)
        .where(Delivery.subscriber_id == subscriber_id, Delivery.status == DeliveryStatus.SENT)
        .order_by(Delivery.sent_at.desc(), Delivery.id.desc())
        .limit(limit)
    ).all()
    paper_ids = {pid for delivery in deliveries for pid in delivery.paper_ids}
    papers = {p.id: p for p in session.scalars(sa.select(Paper).where(Paper.id.in_(paper_ids)))}
    return [
        SentDigest(
            period_key=d.period_key,
            sent_at=d.sent_at or d.updated_at,
            papers=[papers[pid] for pid in d.paper_ids if pid in papers],
        )
        for d in deliveries
    ]
