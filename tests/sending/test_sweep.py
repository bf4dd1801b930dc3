"""The sweeper: expired claims become uncertain, re-queued or failed; stale rows are queued again."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa

from papermail import clock
from papermail.celery_app import _PENDING_KEY
from papermail.db.bookkeeping import AuditLog
from papermail.db.models import Delivery, DeliveryStatus, Digest
from papermail.delivery.plan import plan
from papermail.delivery.sweep import sweep
from tests.support.send_env import add_ranking, add_subscribers

NOW = clock.now()
AGO = timedelta(minutes=30)


@pytest.fixture
def planned(session, settings):
    """Six pending rows, planned half an hour ago; returns their ids."""
    add_ranking(session)
    add_subscribers(session, 6)
    ids = plan(session, settings, now=NOW - AGO, period_key="2026-W48")
    session.execute(sa.update(Delivery).values(updated_at=NOW - AGO))
    return ids


def set_rows(session, ids, **values) -> None:
    session.execute(sa.update(Delivery).where(Delivery.id.in_(ids)).values(**values))
    session.expire_all()


def queued(session) -> list[list[int]]:
    return [args[0] for _task, args in session.info.get(_PENDING_KEY, [])]


def test_expired_claims_are_settled_by_whether_they_were_handed_over(session, settings, planned):
    in_flight, claimed, died_twice, healthy = planned[0], planned[1], planned[2], planned[3]
    expired = {"status": DeliveryStatus.SENDING, "lease_until": NOW - timedelta(seconds=1)}
    set_rows(session, [in_flight], **expired, attempt_started_at=NOW - AGO, attempts=1)
    set_rows(session, [claimed], **expired)
    set_rows(session, [died_twice], **expired, lost_claims=2)
    set_rows(session, [healthy], status=DeliveryStatus.SENDING, lease_until=NOW + timedelta(minutes=1))
    report = sweep(session, replace(settings, requeue_after_seconds=3600), now=NOW)
    rows = {d.id: d for d in session.scalars(sa.select(Delivery))}
    assert report.uncertain_ids == [in_flight] and rows[in_flight].status == DeliveryStatus.UNCERTAIN
    assert report.recovered_ids == [claimed]
    assert (rows[claimed].status, rows[claimed].lost_claims) == (DeliveryStatus.PENDING, 1)
    assert report.failed_ids == [died_twice] and rows[died_twice].status == DeliveryStatus.FAILED
    assert "died 3 times" in rows[died_twice].last_smtp_reply
    assert rows[healthy].status == DeliveryStatus.SENDING
    # The recovered row is queued again; the uncertain one is reported, not queued.
    assert queued(session) == [[claimed]]
    actions = session.scalars(sa.select(AuditLog.action).where(AuditLog.delivery_id == in_flight)).all()
    assert actions == ["delivery.uncertain"]


def test_a_recovered_row_that_was_tried_before_goes_back_to_retry(session, settings, planned):
    set_rows(
        session,
        planned[:1],
        status=DeliveryStatus.SENDING,
        lease_until=NOW - timedelta(seconds=1),
        attempts=2,
        next_attempt_at=NOW - AGO,
    )
    sweep(session, settings, now=NOW)
    row = session.get(Delivery, planned[0])
    assert (row.status, row.next_attempt_at) == (DeliveryStatus.RETRY, None)


def test_stale_pending_rows_are_queued_again_in_batches_once(session, settings, planned):
    fresh = planned[-1]
    set_rows(session, [fresh], updated_at=NOW)
    report = sweep(session, replace(settings, send_batch_size=2, requeue_after_seconds=600), now=NOW)
    assert report.requeued_ids == planned[:-1]
    assert queued(session) == [planned[0:2], planned[2:4], planned[4:5]]
    session.info.pop(_PENDING_KEY)
    assert (
        sweep(
            session, replace(settings, requeue_after_seconds=600), now=NOW + timedelta(seconds=5)
        ).requeued_ids
        == []
    )


def test_a_retry_is_queued_once_when_its_time_comes(session, settings, planned):
    due, later = planned[0], planned[1]
    set_rows(
        session,
        [due],
        status=DeliveryStatus.RETRY,
        next_attempt_at=NOW - timedelta(seconds=1),
        updated_at=NOW - AGO,
    )
    set_rows(session, [later], status=DeliveryStatus.RETRY, next_attempt_at=NOW + AGO, updated_at=NOW - AGO)
    set_rows(session, planned[2:], updated_at=NOW)
    fast = replace(settings, requeue_after_seconds=3600)
    assert sweep(session, fast, now=NOW).requeued_ids == [due]
    assert sweep(session, fast, now=NOW + timedelta(seconds=1)).requeued_ids == []


def test_a_paused_digest_is_left_alone(session, settings, planned):
    session.execute(sa.update(Digest).values(paused_at=NOW, pause_reason="breaker"))
    assert sweep(session, settings, now=NOW).requeued_ids == []
    assert queued(session) == []
