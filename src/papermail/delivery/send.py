"""Sending a batch of deliveries: each one claimed, re-checked, rendered, delivered and recorded once.

The protocol, and what each step guards against:

1. **Claim** the batch with one conditional UPDATE (status in ``claimable`` → ``sending``, a lease,
   ``claims + 1``), committed before anything is sent. Rows another worker (or a duplicate task)
   already holds are not returned, so they are not sent. The new ``claims`` value is this claim's
   fence: every later write on the row requires it, so a worker that lost its claim (its lease ran
   out and the sweeper handed the row on) can never overwrite the new owner's outcome.
2. **Render** the frozen papers in bulk; a row that can't be rendered or built fails alone.
3. Just before the SMTP transaction, **mark the row handed over** (``attempt_started_at``, the
   Message-ID, ``attempts + 1``) and commit, in one conditional UPDATE that also **re-checks
   eligibility**: an unsubscribed or suppressed subscriber is skipped, however long ago the row was
   planned. If the worker dies after this, the sweeper knows the row *may* have gone out and marks
   it uncertain instead of sending it again; if it dies before, the sweeper knows it did not and
   re-queues it.
4. **Record** the outcome: 2xx sent; 4xx, timeouts and dropped connections retry with exponential
   backoff and jitter until the give-up period, then exhausted; 5xx failed, and a 5xx to RCPT
   marks the subscriber bounced and suppressed.

The batch shares one connection (the backend reconnects after ``smtp_max_per_connection`` messages,
a 421 or a drop), a process-wide circuit breaker, and the global send-rate limiter.
"""

from __future__ import annotations

import enum
import logging
import random
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parseaddr
from functools import cache

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from papermail import clock
from papermail.config import Settings
from papermail.db import session_factory
from papermail.db.models import Delivery, DeliveryStatus, Digest, Subscriber, SubscriberStatus, Suppression
from papermail.db.types import UTCDateTime
from papermail.delivery.breaker import CircuitBreaker, pause_digests, process_breaker
from papermail.mail.dkim import signer_for
from papermail.delivery.faults import fault_hook
from papermail.send_pacing import send_pacer_for
from papermail.digest.render import render_deliveries
from papermail.mail.backends import (
    Envelope,
    InvalidMessage,
    MailBackend,
    PermanentSendError,
    SendError,
    TransientSendError,
    backend_from_url,
)
from papermail.mail.message import MessageBuildError, OutgoingEmail, build_message, make_message_id
from papermail.subscribers import email_hash, mailable_ids, mark_bounced

log = logging.getLogger(__name__)

CLAIMABLE = (DeliveryStatus.PENDING, DeliveryStatus.RETRY)
# A claim's outcome may still be recorded while the row is sending, or after the sweeper gave up on
# the claim and called it uncertain: the 250 we then got settles the question.
OWNED = (DeliveryStatus.SENDING, DeliveryStatus.UNCERTAIN)
REPLY_LIMIT = 1000  # characters of an SMTP reply kept on the row
# Connection failures in a row after which a batch stops: one may be a dropped connection (the
# next message reconnects), two mean the relay is down for now.
RELAY_DOWN_AFTER = 2


@dataclass
class BatchReport:
    """What :func:`send_batch` did with each id it was given."""

    sent_ids: list[int] = field(default_factory=list)
    retried_ids: list[int] = field(default_factory=list)
    failed_ids: list[int] = field(default_factory=list)
    exhausted_ids: list[int] = field(default_factory=list)  # transient failures past the give-up period
    skipped_ids: list[int] = field(default_factory=list)  # no longer eligible
    not_claimed_ids: list[int] = field(default_factory=list)  # not claimable, or held by another worker
    deferred_ids: list[int] = field(default_factory=list)  # claimed, then handed back unsent
    paused: bool = False  # the circuit breaker paused the run, or it was paused meanwhile
    relay_down: bool = False  # the relay failed twice in a row: the rest was handed back

    @property
    def sent(self) -> int:
        return len(self.sent_ids)

    @property
    def retried(self) -> int:
        return len(self.retried_ids)

    @property
    def failed(self) -> int:
        return len(self.failed_ids) + len(self.exhausted_ids)

    @property
    def skipped(self) -> int:
        return len(self.skipped_ids)

    @property
    def not_claimed(self) -> int:
        return len(self.not_claimed_ids)

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


@dataclass
class _Row:
    """One claimed delivery, with what the send loop needs and the claim number that fences it."""

    id: int
    claim: int
    digest_id: int
    subscriber_id: int
    email: str
    message_id: str | None
    first_attempt_at: datetime | None
    attempts: int


def send_batch(
    settings: Settings,
    delivery_ids: Iterable[int],
    *,
    claimable: Collection[DeliveryStatus] = CLAIMABLE,
    actor: str = "worker",
) -> BatchReport:
    """Claim and send these deliveries over one connection; never to an ineligible subscriber.

    Rows whose worker died before (``lost_claims`` > 0) may be what kills workers, so they are
    never claimed together with others: they are sent one claim each, after the rest of the
    batch, the least suspicious first. A message that crashes its worker takes only itself down,
    however the broker redelivers the batch.
    """
    ids = sorted({int(i) for i in delivery_ids})
    report = BatchReport()
    if not ids:
        return report
    factory = session_factory(settings)
    with factory.begin() as session:
        left_alone = _ineligible_resends(session, ids, claimable)
        suspects = _suspects(session, [i for i in ids if i not in left_alone])
    report.skipped_ids = sorted(left_alone)
    healthy = [i for i in ids if i not in left_alone and i not in suspects]
    claimed: set[int] = set()
    for group in [healthy, *([suspect] for suspect in suspects)]:
        if not group:
            continue
        # The claim gets a transaction of its own: on SQLite, a transaction that has read cannot
        # start writing once another connection has committed ("database is locked" at once).
        with factory.begin() as session:
            claims = _claim(session, group, claimable, settings)
        claimed.update(claims)
        if claims:
            _BatchSender(settings, factory, claims, report).run()
        if report.paused or report.relay_down:
            break
    report.not_claimed_ids.extend(i for i in ids if i not in claimed and i not in left_alone)
    log.info("send batch of %d by %s: %s", len(ids), actor, report.counts())
    return report


def _suspects(session: Session, ids: Sequence[int]) -> list[int]:
    """Those of ``ids`` whose worker died while holding them, least often first."""
    if not ids:
        return []
    query = (
        sa.select(Delivery.id)
        .where(Delivery.id.in_(ids), Delivery.lost_claims > 0)
        .order_by(Delivery.lost_claims, Delivery.id)
    )
    return list(session.scalars(query))


def _ineligible_resends(
    session: Session, ids: Sequence[int], claimable: Collection[DeliveryStatus]
) -> set[int]:
    """Rows a resend would claim whose subscriber may no longer be mailed: they are left as they are.

    A planned row (pending, retry) of an ineligible subscriber is claimed and recorded as skipped
    with the reason; a failed or sent one keeps its status and its story.
    """
    resend_statuses = set(claimable) - set(CLAIMABLE)
    if not resend_statuses:
        return set()
    rows = session.execute(
        sa.select(Delivery.id, Subscriber)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.id.in_(ids), Delivery.status.in_(resend_statuses))
    ).all()
    eligible = mailable_ids(session, [subscriber for _, subscriber in rows])
    return {delivery_id for delivery_id, subscriber in rows if subscriber.id not in eligible}


def _claim(
    session: Session, ids: Sequence[int], claimable: Collection[DeliveryStatus], settings: Settings
) -> dict[int, int]:
    """Take the claimable rows among ``ids``; return {id: claim number} for the rows now ours."""
    now = clock.now()
    paused = sa.select(Digest.id).where(Digest.paused_at.is_not(None))
    statement = (
        sa.update(Delivery)
        .where(
            Delivery.id.in_(ids),
            Delivery.status.in_(list(claimable)),
            # A retry waits for its time; a retry's task that arrives early claims nothing.
            sa.or_(
                Delivery.status != DeliveryStatus.RETRY,
                Delivery.next_attempt_at.is_(None),
                Delivery.next_attempt_at <= now,
            ),
            Delivery.digest_id.not_in(paused),
            # Checked here too, not only by _suspects: the sweeper may have just recovered a row.
            sa.true() if len(ids) == 1 else Delivery.lost_claims == 0,
        )
        .values(
            status=DeliveryStatus.SENDING,
            claims=Delivery.claims + 1,
            lease_until=now + timedelta(seconds=settings.send_lease_seconds),
            attempt_started_at=None,
            updated_at=now,
        )
        .returning(Delivery.id, Delivery.claims)
        .execution_options(synchronize_session=False)
    )
    return dict(session.execute(statement).all())


@cache
def _compiled(statement: sa.Update, dialect: sa.Dialect) -> sa.sql.compiler.Compiled:
    return statement.compile(dialect=dialect)


class _RowWrites:
    """The two writes every message makes (hand-over, outcome), each committed as it is made.

    On PostgreSQL each is a single autocommit statement, one round trip instead of BEGIN, UPDATE
    and COMMIT, run as a server-side prepared statement straight on the driver's connection (the
    SQL is compiled once from the SQLAlchemy statement), each on a connection of its own:

    * hand-overs on one whose commits wait for the disk: losing a hand-over in a database crash
      could let a delivered message be sent again;
    * outcomes on one with ``synchronous_commit`` off, which saves a disk flush per message:
      losing the last fraction of a second of outcomes (only if PostgreSQL itself crashes)
      leaves those rows handed over, so the sweeper reports them uncertain, never a duplicate.
      Other sessions see each commit at once either way.

    SQLite has no round trips to save; there both go through the batch's session.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self.durable: sa.Connection | None = None
        self.fast: sa.Connection | None = None
        engine = session.get_bind()
        if engine.dialect.name == "postgresql":
            self.durable = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self.fast = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self.fast.exec_driver_sql("SET synchronous_commit TO off")

    def hand_over(self, params: dict) -> bool:
        return self._execute(self.durable, _HAND_OVER(), params)

    def settle(self, params: dict) -> bool:
        return self._execute(self.fast, _SETTLE(), params)

    def _execute(self, connection: sa.Connection | None, statement: sa.Update, params: dict) -> bool:
        if connection is None:
            # A transaction of its own that starts with this write: on SQLite, one that had read
            # first would fail outright if another process committed in between.
            self.session.commit()
            changed = self.session.execute(statement, params).rowcount == 1
            self.session.commit()
            return changed
        compiled = _compiled(statement, connection.dialect)
        values = {
            name: value.value if isinstance(value, enum.Enum) else value
            for name, value in compiled.construct_params(params).items()
        }
        with connection.connection.driver_connection.cursor() as cursor:
            cursor.execute(compiled.string, values, prepare=True)
            return cursor.rowcount == 1

    def __enter__(self) -> _RowWrites:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fast is not None:
            try:  # it goes back to the pool, where the next user expects durable commits
                self.fast.exec_driver_sql("RESET synchronous_commit")
            except sa.exc.DBAPIError:
                self.fast.invalidate()
            self.fast.close()
        if self.durable is not None:
            self.durable.close()


class _BatchSender:
    """One batch's send loop; its writes are short transactions, one per step that must be durable."""

    writes: _RowWrites  # set by run()
    digest_ids: set[int]  # the digests of the claimed rows, set by run()

    def __init__(
        self, settings: Settings, factory: sessionmaker[Session], claims: dict[int, int], report: BatchReport
    ) -> None:
        self.settings, self.factory, self.claims, self.report = settings, factory, claims, report
        self.lease = timedelta(seconds=settings.send_lease_seconds)
        self.breaker: CircuitBreaker = process_breaker(settings.breaker_threshold)
        self.pacer = send_pacer_for(settings)
        self.signer = signer_for(settings)
        self.faults = fault_hook()
        self.sender_address = parseaddr(settings.mail_from)[1]
        self.remaining: dict[int, int] = dict(claims)  # claimed and not yet settled
        self.next_heartbeat = 0.0
        self.connection_failures = 0  # in a row, in this batch

    # -- the loop ---------------------------------------------------------------------------------

    def run(self) -> None:
        with self.factory() as session, _RowWrites(session) as writes:
            self.writes = writes
            rows = self._load(session)
            self.digest_ids = {row.digest_id for row in rows}
            # Eligibility is checked in each row's hand-over, atomically with marking it: an
            # earlier check here would only save rendering the rare row that is then skipped.
            emails = self._render(session, rows)
            session.commit()
            backend = backend_from_url(
                self.settings.mail_url,
                timeout=self.settings.smtp_timeout_seconds,
                max_per_connection=self.settings.smtp_max_per_connection,
            )
            # The claim just set the leases and skipped paused digests.
            self.next_heartbeat = time.monotonic() + self.settings.send_lease_seconds / 3
            try:
                for row in rows:
                    if row.id not in emails:
                        continue
                    if time.monotonic() >= self.next_heartbeat:
                        self._heartbeat(session)
                    if self.report.paused:
                        break
                    self._send_one(session, backend, row, emails[row.id])
                    if self.breaker.tripped:
                        self._trip(session)
                        break
                    if self.connection_failures >= RELAY_DOWN_AFTER:
                        # Each further row would wait out another timeout against a relay that
                        # is gone; the rest of the batch goes back to be queued again later.
                        self.report.relay_down = True
                        break
                session.commit()
            finally:
                backend.close()
            if self.report.paused or self.report.relay_down:
                self._hand_back(session)

    def _send_one(self, session: Session, backend: MailBackend, row: _Row, email: OutgoingEmail) -> None:
        message_id = row.message_id or make_message_id(self.settings.mail_from)
        try:
            message = build_message(
                email, mail_from=self.settings.mail_from, message_id=message_id, date=clock.now()
            )
            if self.signer is not None:
                message = self.signer.sign(message)
        except (MessageBuildError, ValueError, TypeError) as exc:
            self._fail(session, row, None, f"message could not be built: {exc}")
            return
        self.pacer.wait_turn()
        self.faults.reached("before_smtp", row.email)
        if not self._hand_over(session, row, message_id):
            return
        try:
            reply = backend.send(Envelope(self.sender_address, row.email), message)
        except InvalidMessage as exc:
            self._fail(session, row, exc.code, exc.reason)
        except PermanentSendError as exc:
            self._fail(session, row, exc.code, exc.reason, bounced=exc.recipient_refused)
            if not exc.recipient_refused:
                self.breaker.failed(exc.reason)
        except TransientSendError as exc:
            self._retry_later(session, row, exc)
            self.breaker.failed(exc.reason)
            self.connection_failures = self.connection_failures + 1 if exc.connection_failed else 0
        else:
            self.faults.reached("after_250", row.email)
            self._sent(session, row, reply)
            self.breaker.succeeded()
            self.connection_failures = 0

    # -- before the loop --------------------------------------------------------------------------

    def _load(self, session: Session) -> list[_Row]:
        query = (
            sa.select(
                Delivery.id,
                Delivery.claims,
                Delivery.digest_id,
                Delivery.subscriber_id,
                Subscriber.email,
                Delivery.message_id,
                Delivery.first_attempt_at,
                Delivery.attempts,
            )
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.id.in_(list(self.claims)))
            .order_by(Delivery.id)
        )
        return [_Row(*r) for r in session.execute(query) if self.claims.get(r[0]) == r[1]]

    def _render(self, session: Session, rows: list[_Row]) -> dict[int, OutgoingEmail]:
        emails, problems = _render_isolating_failures(session, self.settings, [r.id for r in rows])
        for row in rows:
            if row.id not in emails:
                problem = problems.get(row.id, "the renderer returned nothing for it")
                self._fail(session, row, None, f"digest could not be rendered: {problem}")
        return emails

    # -- per-row writes ---------------------------------------------------------------------------

    def _hand_over(self, session: Session, row: _Row, message_id: str) -> bool:
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
        claimed = self.writes.hand_over(params)
        if claimed:
            row.first_attempt_at = row.first_attempt_at or now
            row.attempts += 1
            return True
        # Either another worker owns the row now, or the subscriber left since the batch began.
        owner = session.scalar(
            sa.select(Delivery.claims).where(Delivery.id == row.id, Delivery.status == DeliveryStatus.SENDING)
        )
        if owner == row.claim:
            subscriber = session.get(Subscriber, row.subscriber_id)
            self._settle(
                session,
                row,
                self.report.skipped_ids,
                DeliveryStatus.SKIPPED,
                skip_reason=_ineligible_reason(subscriber),
            )
        else:
            self.remaining.pop(row.id, None)
            self.report.not_claimed_ids.append(row.id)
        return False

    def _sent(self, session: Session, row: _Row, reply: str) -> None:
        self._settle(
            session,
            row,
            self.report.sent_ids,
            DeliveryStatus.SENT,
            code=_reply_code(reply),
            reply=reply,
            sent=True,
        )

    def _retry_later(self, session: Session, row: _Row, error: SendError) -> None:
        now = clock.now()
        give_up_at = (row.first_attempt_at or now) + timedelta(hours=self.settings.give_up_hours)
        if now >= give_up_at:
            self._settle(
                session,
                row,
                self.report.exhausted_ids,
                DeliveryStatus.EXHAUSTED,
                code=error.code,
                reply=error.reason,
            )
            return
        next_attempt_at = min(now + retry_delay(row.attempts, self.settings), give_up_at)
        self._settle(
            session,
            row,
            self.report.retried_ids,
            DeliveryStatus.RETRY,
            code=error.code,
            reply=error.reason,
            next_attempt_at=next_attempt_at,
        )

    def _fail(
        self, session: Session, row: _Row, code: int | None, reason: str, *, bounced: bool = False
    ) -> None:
        settled = self._settle(
            session, row, self.report.failed_ids, DeliveryStatus.FAILED, code=code, reply=reason
        )
        if settled and bounced:
            subscriber = session.get(Subscriber, row.subscriber_id)
            session.commit()  # end the read, so the bounce's transaction starts with its write
            if subscriber is not None:
                mark_bounced(session, subscriber, reply=reason)
                session.commit()

    def _settle(
        self,
        session: Session,
        row: _Row,
        outcome: list[int],
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
        (outcome if settled else self.report.not_claimed_ids).append(row.id)
        return settled

    # -- the lease and the breaker ----------------------------------------------------------------

    def _heartbeat(self, session: Session) -> None:
        """Extend the lease on the rows still to send, and notice if their digest was paused."""
        now = clock.now()
        self.next_heartbeat = time.monotonic() + self.settings.send_lease_seconds / 3
        if not self.remaining:
            return
        # Not fenced by claim number: if another worker has taken one of these rows meanwhile,
        # lengthening its lease a little is harmless (a lease only bounds how long a dead worker
        # holds a row), and this statement stays one cheap shape.
        session.execute(
            sa.update(Delivery)
            .where(Delivery.id.in_(list(self.remaining)), Delivery.status == DeliveryStatus.SENDING)
            .values(lease_until=now + self.lease)
            .execution_options(synchronize_session=False)
        )
        paused = session.scalar(
            sa.select(sa.func.count())
            .select_from(Digest)
            .where(Digest.paused_at.is_not(None), Digest.id.in_(self.digest_ids))
        )
        session.commit()
        self.report.paused = bool(paused)

    def _trip(self, session: Session) -> None:
        reason = (
            f"circuit breaker: {self.breaker.failures} consecutive failed sends; "
            f"last: {self.breaker.last_failure}"
        )
        paused = pause_digests(session, self.digest_ids, reason)
        session.commit()
        log.error("paused digests %s: %s", paused, reason)
        self.breaker.reset()
        self.report.paused = True

    def _hand_back(self, session: Session) -> None:
        """Release the claimed rows not yet handed over: back to pending, or retry if tried before."""
        if not self.remaining:
            return
        statement = (
            sa.update(Delivery)
            .where(
                _fenced(self.remaining),
                Delivery.status == DeliveryStatus.SENDING,
                Delivery.attempt_started_at.is_(None),
            )
            .values(
                status=sa.case(
                    (Delivery.attempts > 0, DeliveryStatus.RETRY.value), else_=DeliveryStatus.PENDING.value
                ),
                lease_until=None,
                updated_at=clock.now(),
            )
            .returning(Delivery.id)
            .execution_options(synchronize_session=False)
        )
        self.report.deferred_ids.extend(session.scalars(statement))
        session.commit()
        self.remaining.clear()


# The two statements every message runs, built once: constructing them per message cost more
# than executing them.
@cache
def _HAND_OVER() -> sa.Update:
    """Mark a claimed row handed over, if still claimed by us and its subscriber still mailable."""
    row = Delivery.__table__.c
    now = sa.bindparam("now", type_=UTCDateTime())
    return (
        sa.update(Delivery.__table__)
        .where(
            row.id == sa.bindparam("row_id"),
            row.claims == sa.bindparam("claim"),
            row.status == DeliveryStatus.SENDING,
            sa.exists().where(
                Subscriber.id == row.subscriber_id, Subscriber.status == SubscriberStatus.ACTIVE
            ),
            ~sa.exists().where(Suppression.email_hash == sa.bindparam("hashed")),
        )
        .values(
            attempt_started_at=now,
            attempts=row.attempts + 1,
            first_attempt_at=sa.func.coalesce(row.first_attempt_at, now),
            message_id=sa.bindparam("message_id_value"),
            lease_until=sa.bindparam("lease_end", type_=UTCDateTime()),
            updated_at=now,
        )
    )


@cache
def _SETTLE() -> sa.Update:
    """Record an outcome on a row we still hold (sending, or called uncertain meanwhile)."""
    row = Delivery.__table__.c

    def unless_null(name: str, column: sa.Column, type_: sa.types.TypeEngine) -> sa.ColumnElement:
        return sa.func.coalesce(sa.bindparam(name, type_=type_), column)

    return (
        sa.update(Delivery.__table__)
        .where(
            row.id == sa.bindparam("row_id"),
            row.claims == sa.bindparam("claim"),
            # Not status IN (...): an expanding IN can't be compiled once for reuse.
            sa.or_(*(row.status == status for status in OWNED)),
        )
        .values(
            status=sa.bindparam("new_status", type_=row.status.type),
            lease_until=None,
            attempt_started_at=None,
            updated_at=sa.bindparam("now", type_=UTCDateTime()),
            next_attempt_at=sa.bindparam("next_attempt_value", type_=UTCDateTime()),
            sent_at=unless_null("sent_at_value", row.sent_at, UTCDateTime()),
            last_smtp_code=unless_null("code", row.last_smtp_code, sa.Integer()),
            last_smtp_reply=unless_null("reply", row.last_smtp_reply, sa.Text()),
            skip_reason=unless_null("skip_reason_value", row.skip_reason, sa.Text()),
        )
    )


def _fenced(claims: dict[int, int]) -> sa.ColumnElement[bool]:
    """Rows still held under exactly these claim numbers."""
    return sa.tuple_(Delivery.id, Delivery.claims).in_(list(claims.items()))


def retry_delay(attempts: int, settings: Settings) -> timedelta:
    """Exponential backoff with jitter: about base * 2^(attempts-1), capped, randomised to ±25%."""
    ceiling = min(settings.retry_base_seconds * 2 ** max(attempts - 1, 0), settings.retry_max_seconds)
    # Jitter spreads retries of a whole batch that failed together (a relay outage) over time.
    return timedelta(seconds=ceiling * random.uniform(0.75, 1.25))


def _render_isolating_failures(
    session: Session, settings: Settings, ids: list[int]
) -> tuple[dict[int, OutgoingEmail], dict[int, str]]:
    """Render in bulk; if that raises, split the batch until the failing rows are alone."""
    if not ids:
        return {}, {}
    try:
        return dict(render_deliveries(session, settings, ids)), {}
    except sa.exc.SQLAlchemyError:
        raise  # the database, not a row: let the task fail and the sweeper recover the batch
    except Exception as exc:
        if len(ids) == 1:
            log.exception("delivery %s could not be rendered", ids[0])
            return {}, {ids[0]: f"{type(exc).__name__}: {exc}"}
    middle = len(ids) // 2
    left, left_problems = _render_isolating_failures(session, settings, ids[:middle])
    right, right_problems = _render_isolating_failures(session, settings, ids[middle:])
    return {**left, **right}, {**left_problems, **right_problems}


def _ineligible_reason(subscriber: Subscriber | None) -> str:
    if subscriber is None:
        return "subscriber was deleted"
    if subscriber.status != SubscriberStatus.ACTIVE:
        return f"subscriber is {subscriber.status.value} at send time"
    return "address is suppressed"


def _reply_code(reply: str) -> int | None:
    head = reply[:3]
    return int(head) if head.isdigit() else None
