"""Sending a batch of deliveries: claim them, render them, send each through the outbox, record it.

Read top to bottom: :func:`send_batch` claims the healthy rows of a batch together and each suspect
alone (:mod:`papermail.sending.claims` holds the rules every row write follows); a
:class:`_BatchSender` then renders the claimed rows in bulk and sends them one by one over one
connection (the backend reconnects after ``smtp_max_per_connection`` messages, a 421 or a drop),
paced by the global send rate, watched by a process-wide circuit breaker, with the lease renewed as
it goes. It stops early when the digest is paused or the relay is down, and hands back what it did
not send.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterable

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from papermail.config import Settings
from papermail.db import session_factory
from papermail.db.models import DeliveryStatus, Digest
from papermail.delivery.breaker import CircuitBreaker, pause_digests, process_breaker
from papermail.delivery.rows import DELIVERIES, ineligible_resends
from papermail.digest.render import render_deliveries
from papermail.mail.message import OutgoingEmail
from papermail.mail.outbox import Outbox, Verdict
from papermail.sending.claims import CLAIMABLE, BatchReport, ClaimedRow, ClaimedRows, claim, suspects
from papermail.sending.pacing import send_pacer_for
from papermail.sending.verp import VerpKind, verp_sender_for

log = logging.getLogger(__name__)

# Connection failures in a row after which a batch stops: one may be a dropped connection (the
# next message reconnects), two mean the relay is down for now.
RELAY_DOWN_AFTER = 2


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
        left_alone = ineligible_resends(session, ids, claimable)
        suspected = suspects(session, [i for i in ids if i not in left_alone], DELIVERIES)
    report.skipped_ids = sorted(left_alone)
    healthy = [i for i in ids if i not in left_alone and i not in suspected]
    claimed: set[int] = set()
    for group in [healthy, *([suspect] for suspect in suspected)]:
        if not group:
            continue
        # The claim gets a transaction of its own: on SQLite, a transaction that has read cannot
        # start writing once another connection has committed ("database is locked" at once).
        with factory.begin() as session:
            claims = claim(session, group, claimable, settings, DELIVERIES)
        claimed.update(claims)
        if claims:
            _BatchSender(settings, factory, claims, report).run()
        if report.paused or report.relay_down:
            break
    report.not_claimed_ids.extend(i for i in ids if i not in claimed and i not in left_alone)
    log.info("send batch of %d by %s: %s", len(ids), actor, report.counts())
    return report


class _BatchSender:
    """One claim's send loop; every write on a row goes through its :class:`ClaimedRows`."""

    def __init__(
        self, settings: Settings, factory: sessionmaker[Session], claims: dict[int, int], report: BatchReport
    ) -> None:
        self.settings, self.factory, self.claims, self.report = settings, factory, claims, report
        self.breaker: CircuitBreaker = process_breaker(settings.breaker_threshold)
        self.pacer = send_pacer_for(settings)
        self.heartbeat_every = settings.send_lease_seconds / 3
        self.connection_failures = 0  # in a row, in this batch
        self.digest_ids: set[int] = set()

    def run(self) -> None:
        with (
            self.factory() as session,
            ClaimedRows(session, self.settings, self.claims, self.report, DELIVERIES) as rows,
        ):
            loaded = rows.load()
            self.digest_ids = {row.digest_id for row in loaded}
            # Eligibility is checked in each row's hand-over, atomically with marking it: an
            # earlier check here would only save rendering the rare row that is then skipped.
            emails = self._render(session, rows, loaded)
            session.commit()
            # The claim just set the leases and skipped paused digests.
            next_heartbeat = time.monotonic() + self.heartbeat_every
            with Outbox.from_settings(self.settings, pacer=self.pacer) as outbox:
                for row in loaded:
                    if row.id not in emails:
                        continue
                    if time.monotonic() >= next_heartbeat:
                        self._heartbeat(session, rows)
                        next_heartbeat = time.monotonic() + self.heartbeat_every
                    if self.report.paused:
                        break
                    self._send_one(outbox, rows, row, emails[row.id])
                    if self.breaker.tripped:
                        self._trip(session)
                        break
                    if self.connection_failures >= RELAY_DOWN_AFTER:
                        # Each further row would wait out another timeout against a relay that
                        # is gone; the rest of the batch goes back to be queued again later.
                        self.report.relay_down = True
                        break
                session.commit()
            if self.report.paused or self.report.relay_down:
                rows.hand_back()

    def _send_one(self, outbox: Outbox, rows: ClaimedRows, row: ClaimedRow, email: OutgoingEmail) -> None:
        outcome = outbox.send(
            email,
            message_id=row.message_id,
            hand_over=lambda message_id: rows.hand_over(row, message_id),
            return_path=verp_sender_for(self.settings, VerpKind.DELIVERY, row.id),
        )
        rows.record(row, outcome)
        if outcome.relay_failed:
            self.breaker.failed(outcome.reply or "")
        elif outcome.verdict == Verdict.SENT:
            self.breaker.succeeded()
        if outcome.verdict == Verdict.SENT:
            self.connection_failures = 0
        elif outcome.verdict == Verdict.TRANSIENT:
            self.connection_failures = self.connection_failures + 1 if outcome.connection_failed else 0

    def _render(
        self, session: Session, rows: ClaimedRows, loaded: list[ClaimedRow]
    ) -> dict[int, OutgoingEmail]:
        emails, problems = _render_isolating_failures(session, self.settings, [r.id for r in loaded])
        for row in loaded:
            if row.id not in emails:
                problem = problems.get(row.id, "the renderer returned nothing for it")
                rows.fail(row, None, f"digest could not be rendered: {problem}")
        return emails

    def _heartbeat(self, session: Session, rows: ClaimedRows) -> None:
        """Extend the lease on the rows still to send, and notice if their digest was paused."""
        rows.extend_leases()
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
