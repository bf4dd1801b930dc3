"""A digest request: the one value that fixes a digest's content, from a planned delivery or for a preview."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from papermail.db.models import Delivery, Digest, Subscriber


@dataclass(frozen=True)
class DigestRequest:
    """Everything that decides one digest's content: who, which period, which papers, which run."""

    key: int  # the delivery id (or any key the caller wants the result under)
    subscriber: Subscriber
    period_key: str
    paper_ids: Sequence[int]
    run_id: int | None
    delivery_id: int | None = None  # a planned delivery: its digest gets a "View in browser" link
    # Frozen with the papers: each one's personal "why" ("" for none), or empty for none at all.
    reasons: Sequence[str] = ()

    def reasons_by_paper(self) -> dict[int, str]:
        """Each paper's frozen personal reason (a paper without one may be missing)."""
        return dict(zip(self.paper_ids, self.reasons, strict=False)) if self.reasons else {}

    @classmethod
    def of_delivery(cls, delivery: Delivery, subscriber: Subscriber, run_id: int | None) -> DigestRequest:
        """The request that renders a planned delivery exactly as it was frozen."""
        return cls(
            delivery.id,
            subscriber,
            delivery.period_key,
            delivery.paper_ids,
            run_id,
            delivery_id=delivery.id,
            reasons=delivery.reasons or (),
        )


def delivery_query() -> sa.Select:
    """Deliveries with their subscriber and the scoring run their digest pinned: the rows
    :meth:`DigestRequest.of_delivery` is made from."""
    return (
        sa.select(Delivery, Subscriber, Digest.scoring_run_id)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .join(Digest, Digest.id == Delivery.digest_id)
    )
