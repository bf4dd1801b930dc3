"""A row's life while it is sent: claim, hand-over, outcome, each fenced by its claim.

Two kinds of row live by these rules (:class:`RowKind`): digest deliveries (:mod:`papermail.delivery.rows`)
and confirmation emails (:mod:`papermail.signup.confirmations`); each kind's owner defines it.

1. **Claim**: one conditional UPDATE takes the claimable rows (status in ``claimable`` → ``sending``,
   a lease, ``claims + 1``), committed before anything is sent. Rows another worker (or a duplicate
   task) already holds are not returned. The new ``claims`` value is this claim's **fence**: every
   later write on the row requires it, so a worker that lost its claim (its lease ran out and the
   sweeper handed the row on) can never overwrite the new owner's outcome.
2. **Hand-over**: just before the SMTP transaction, the row is marked handed over
   (``attempt_started_at``, the Message-ID, ``attempts + 1``) and committed, in one conditional
   UPDATE that also re-checks eligibility: an unsubscribed or suppressed subscriber is skipped,
   however long ago the row was planned. If the worker dies after this, the sweeper knows the row
   *may* have gone out and calls it uncertain; if it dies before, the sweeper re-queues it.
3. **Outcome**: 2xx sent; 4xx, timeouts and dropped connections retry with exponential backoff and
   jitter until the give-up period, then exhausted; 5xx failed, and a 5xx to RCPT marks the
   subscriber bounced and suppressed. Rows claimed but never handed over go back as they were.

**Suspects**: rows whose worker died holding them (``lost_claims`` > 0) may be what kills workers,
so they are claimed one at a time, never with others.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail import clock
from papermail.config import Settings
from papermail.db.models import DeliveryStatus, SendState, Subscriber, SubscriberStatus
from papermail.mail.outbox import Outcome, Verdict
from papermail.redaction import email_hash
from papermail.sending.row_writes import RowWrites

CLAIMABLE = (DeliveryStatus.PENDING, DeliveryStatus.RETRY)
REPLY_LIMIT = 1000  # characters of an SMTP reply kept on the row


@dataclass(frozen=True, eq=False)  # a kind is itself alone: its columns would not compare as values
class RowKind:
    """What differs between the kinds of row sent under these rules."""

    model: type[SendState]  # Delivery or Confirmation
    awaiting: tuple[SubscriberStatus, ...]  # the subscriber statuses it may still be sent to
    name: str  # in audit actions and logs
    # What a refused recipient (5xx to RCPT) does to its subscriber: ``(session, subscriber, reply=)``.
    mark_bounced: Callable[..., None]
    # A condition a row must also meet to be claimed or re-queued (a delivery: its digest isn't paused).
    sendable: Callable[[], sa.ColumnElement[bool]] | None = None
    digest_id: Any = None  # the column naming the row's digest, for kinds that have one


@dataclass
class BatchReport:
    """What became of each delivery id a batch was given."""

    sent_ids: list[int] = field(default_factory=list)
    retried_ids: list[int] = field(default_factory=list)
    failed_ids: list[int] = field(default_factory=list)
    exhausted_ids: list[int] = field(default_factory=list)  # transient failures past the give-up period
    skipped_ids: list[int] = field(default_factory=list)  # no longer eligible
    not_claimed_ids: list[int] = field(default_factory=list)  # not claimable, or held by another worker
    deferred_ids: list[int] = field(default_factory=list)  # claimed, then handed back unsent
    paused: bool = False  # the circuit breaker paused the run, or it was paused meanwhile
    relay_down: bool = False  # the relay failed twice in a row: the rest was handed back

    # How many ids had each outcome (failed includes exhausted).
    sent = property(lambda self: len(self.sent_ids))
    retried = property(lambda self: len(self.retried_ids))
    failed = property(lambda self: len(self.failed_ids) + len(self.exhausted_ids))
    skipped = property(lambda self: len(self.skipped_ids))
    not_claimed = property(lambda self: len(self.not_claimed_ids))

    def counts(self) -> dict[str, int]:
        """The number of ids per outcome, for logs and ``--json``."""
        return {
            "sent": self.sent,
            "retried": self.retried,
            "failed": self.failed,
            "skipped": self.skipped,
            "not_claimed": self.not_claimed,
            "deferred": len(self.deferred_ids),
        }


# -- claiming ---------------------------------------------------------------------------------------


def suspects(session: Session, ids: Sequence[int], kind: RowKind) -> list[int]:
    """Those of ``ids`` whose worker died while holding them, least often first."""
    if not ids:
        return []
    row = kind.model
    query = sa.select(row.id).where(row.id.in_(ids), row.lost_claims > 0).order_by(row.lost_claims, row.id)
    return list(session.scalars(query))


def claim(
    session: Session,
    ids: Sequence[int],
    claimable: Collection[DeliveryStatus],
    settings: Settings,
    kind: RowKind,
) -> dict[int, int]:
    """Take the claimable rows among ``ids``; return {id: claim number} for the rows now ours."""
    now = clock.now()
    row = kind.model
    conditions = [
        row.id.in_(ids),
        row.status.in_(list(claimable)),
        # A retry waits for its time; a retry's task that arrives early claims nothing.
        sa.or_(row.status != DeliveryStatus.RETRY, row.next_attempt_at.is_(None), row.next_attempt_at <= now),
        # Checked here too, not only by suspects(): the sweeper may have just recovered a row.
        sa.true() if len(ids) == 1 else row.lost_claims == 0,
    ]
    if kind.sendable is not None:
        conditions.append(kind.sendable())
    statement = (
        sa.update(row)
        .where(*conditions)
        .values(
            status=DeliveryStatus.SENDING,
            claims=row.claims + 1,
            lease_until=now + timedelta(seconds=settings.send_lease_seconds),
            attempt_started_at=None,
            updated_at=now,
        )
        .returning(row.id, row.claims)
        .execution_options(synchronize_session=False)
    )
    return dict(session.execute(statement).all())


@dataclass
class ClaimedRow:
    """One claimed row, with what sending needs and the claim number that fences it."""

    id: int
    claim: int
    digest_id: int | None  # None for a kind without digests (a confirmation)
    subscriber_id: int
    email: str
    message_id: str | None
    first_attempt_at: datetime | None
    attempts: int


# -- the claimed rows of one batch ------------------------------------------------------------------


class ClaimedRows:
    """The rows one batch holds, and every write made on them: hand-over, outcome, lease, hand-back.

    Each write is a short transaction of its own, committed as it is made (see ``row_writes``).
    """

    def __init__(
        self,
        session: Session,
        settings: Settings,
        claims: dict[int, int],
        report: BatchReport,
        kind: RowKind,
    ) -> None:
        self.session, self.settings, self.claims, self.report = session, settings, claims, report
        self.kind, self.model = kind, kind.model
        self.lease = timedelta(seconds=settings.send_lease_seconds)
        self.remaining: dict[int, int] = dict(claims)  # claimed and not yet settled
        self.writes = RowWrites(session, kind.model, kind.awaiting)
        self._ledger = {
            DeliveryStatus.SENT: report.sent_ids,
            DeliveryStatus.RETRY: report.retried_ids,
            DeliveryStatus.EXHAUSTED: report.exhausted_ids,
            DeliveryStatus.FAILED: report.failed_ids,
            DeliveryStatus.SKIPPED: report.skipped_ids,
        }

    def load(self) -> list[ClaimedRow]:
        """The rows still held under this batch's claims, in id order."""
        row = self.model
        query = (
            sa.select(
                row.id,
                row.claims,
                sa.null() if self.kind.digest_id is None else self.kind.digest_id,
                row.subscriber_id,
                Subscriber.email,
                row.message_id,
                row.first_attempt_at,
                row.attempts,
            )
            .join(Subscriber, Subscriber.id == row.subscriber_id)
            .where(row.id.in_(list(self.claims)))
            .order_by(row.id)
        )
        return [ClaimedRow(*r) for r in self.session.execute(query) if self.claims.get(r[0]) == r[1]]

    def hand_over(self, row: ClaimedRow, message_id: str) -> bool:
        """Durably mark the row as handed to the relay, if it is still ours and still mailable."""
        now = clock.now()
        params = {
            "row_id": row.id,
            "claim": row.claim,
            "hashed": email_hash(row.email),
            "now": now,
            "lease_end": now + self.lease,
            "message_id_value": message_id,
        }
        if self.writes.hand_over(params):
            row.first_attempt_at = row.first_attempt_at or now
            row.attempts += 1
            return True
        # Either another worker owns the row now, or the subscriber left since the batch began.
        owner = self.session.scalar(
            sa.select(self.model.claims).where(
                self.model.id == row.id, self.model.status == DeliveryStatus.SENDING
            )
        )
        if owner == row.claim:
            subscriber = self.session.get(Subscriber, row.subscriber_id)
            self._settle(row, DeliveryStatus.SKIPPED, skip_reason=self._ineligible_reason(subscriber))
        else:
            self.remaining.pop(row.id, None)
            self.report.not_claimed_ids.append(row.id)
        return False

    def record(self, row: ClaimedRow, outcome: Outcome) -> None:
        """Record what the outbox said about the row's message."""
        if outcome.verdict == Verdict.NOT_HANDED_OVER:
            return  # hand_over() already recorded why
        if outcome.verdict in (Verdict.PERMANENT, Verdict.INVALID):
            self.fail(row, outcome.code, outcome.reply or "refused", bounced=outcome.recipient_refused)
            return
        status, next_attempt_at = DeliveryStatus.SENT, None
        if outcome.verdict == Verdict.TRANSIENT:
            status, next_attempt_at = self._retry_timing(row)
        self._settle(
            row,
            status,
            code=outcome.code,
            reply=outcome.reply,
            sent=status == DeliveryStatus.SENT,
            next_attempt_at=next_attempt_at,
        )

    def fail(self, row: ClaimedRow, code: int | None, reason: str, *, bounced: bool = False) -> None:
        """Record the row failed for good; a refused recipient is marked bounced too."""
        settled = self._settle(row, DeliveryStatus.FAILED, code=code, reply=reason)
        if settled and bounced:
            subscriber = self.session.get(Subscriber, row.subscriber_id)
            self.session.commit()  # end the read, so the bounce's transaction starts with its write
            if subscriber is not None:
                self.kind.mark_bounced(self.session, subscriber, reply=reason)
                self.session.commit()

    def _retry_timing(self, row: ClaimedRow) -> tuple[DeliveryStatus, datetime | None]:
        """Retry after an exponential backoff, or exhausted once past the give-up period."""
        now = clock.now()
        give_up_at = (row.first_attempt_at or now) + timedelta(hours=self.settings.give_up_hours)
        if now >= give_up_at:
            return DeliveryStatus.EXHAUSTED, None
        return DeliveryStatus.RETRY, min(now + retry_delay(row.attempts, self.settings), give_up_at)

    def _settle(
        self,
        row: ClaimedRow,
        status: DeliveryStatus,
        *,
        code: int | None = None,
        reply: str | None = None,
        sent: bool = False,
        next_attempt_at: datetime | None = None,
        skip_reason: str | None = None,
    ) -> bool:
        """Record the claim's outcome on the row (only if the claim is still ours) and release it."""
        now = clock.now()
        params = {
            "row_id": row.id,
            "claim": row.claim,
            "now": now,
            "new_status": status,
            "sent_at_value": now if sent else None,
            "next_attempt_value": next_attempt_at,
            "code": code,
            "reply": reply[:REPLY_LIMIT] if reply else None,
            "skip_reason_value": skip_reason,
        }
        settled = self.writes.settle(params)
        self.remaining.pop(row.id, None)
        (self._ledger[status] if settled else self.report.not_claimed_ids).append(row.id)
        return settled

    def extend_leases(self) -> None:
        """Lengthen the lease on the rows still to send (the caller commits)."""
        if not self.remaining:
            return
        # Not fenced by claim number: if another worker has taken one of these rows meanwhile,
        # lengthening its lease a little is harmless (a lease only bounds how long a dead worker
        # holds a row), and this statement stays one cheap shape.
        self.session.execute(
            sa.update(self.model)
            .where(self.model.id.in_(list(self.remaining)), self.model.status == DeliveryStatus.SENDING)
            .values(lease_until=clock.now() + self.lease)
            .execution_options(synchronize_session=False)
        )

    def hand_back(self) -> None:
        """Release the rows not yet handed over: back to pending, or retry if tried before."""
        if not self.remaining:
            return
        row = self.model
        statement = (
            sa.update(row)
            .where(
                sa.tuple_(row.id, row.claims).in_(list(self.remaining.items())),
                row.status == DeliveryStatus.SENDING,
                row.attempt_started_at.is_(None),
            )
            .values(
                status=waiting_again(row),
                lease_until=None,
                updated_at=clock.now(),
            )
            .returning(row.id)
            .execution_options(synchronize_session=False)
        )
        self.report.deferred_ids.extend(self.session.scalars(statement))
        self.session.commit()
        self.remaining.clear()

    def _ineligible_reason(self, subscriber: Subscriber | None) -> str:
        if subscriber is None:
            return "subscriber was deleted"
        if subscriber.status not in self.kind.awaiting:
            return f"subscriber is {subscriber.status.value} at send time"
        return "address is suppressed"

    def __enter__(self) -> ClaimedRows:
        return self

    def __exit__(self, *exc: object) -> None:
        self.writes.close()


def waiting_again(row: type[SendState]) -> sa.Case:
    """The status of a row released unsent: pending, or retry if it was tried before."""
    return sa.case((row.attempts > 0, DeliveryStatus.RETRY.value), else_=DeliveryStatus.PENDING.value)


def retry_delay(attempts: int, settings: Settings) -> timedelta:
    """Exponential backoff with jitter: about base * 2^(attempts-1), capped, randomised to ±25%."""
    ceiling = min(settings.retry_base_seconds * 2 ** max(attempts - 1, 0), settings.retry_max_seconds)
    # Jitter spreads retries of a whole batch that failed together (a relay outage) over time.
    return timedelta(seconds=ceiling * random.uniform(0.75, 1.25))
