"""The sweeper's run: deliveries first, then the confirmation emails, under the ledger's one sweep.

:mod:`papermail.sending.sweep` says what a sweep does to a row; this says which rows, and how each
kind is queued again: deliveries in send batches, confirmations one task per subscriber.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from papermail.config import Settings
from papermail.delivery.plan import enqueue_sends
from papermail.delivery.rows import DELIVERIES
from papermail.sending.sweep import SweepReport, sweep_rows
from papermail.signup.confirmations import sweep_confirmations


@dataclass
class DeliverySweepReport(SweepReport):
    """What one sweep changed and queued: the deliveries', with the confirmations' beside them."""

    confirmations: SweepReport | None = None

    def counts(self) -> dict[str, int]:
        """The number of rows per outcome, for logs (confirmations' prefixed ``confirmation_``)."""
        counts = super().counts()
        if self.confirmations is not None:
            counts.update({f"confirmation_{k}": n for k, n in self.confirmations.counts().items()})
        return counts


def sweep(session: Session, settings: Settings, *, now: datetime) -> DeliverySweepReport:
    """Settle expired claims and re-queue stale rows; the tasks are sent when ``session`` commits."""
    report = DeliverySweepReport()
    sweep_rows(
        session, settings, now, DELIVERIES, lambda ids: enqueue_sends(session, ids, settings=settings), report
    )
    report.confirmations = sweep_confirmations(session, settings, now)
    return report
