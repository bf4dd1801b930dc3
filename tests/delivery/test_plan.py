"""Planning: one row per subscriber and period whatever happens, papers frozen, skips explained."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from papermail import clock
from papermail.celery_app import _PENDING_KEY
from papermail.db.models import Delivery, DeliveryStatus, Digest, Frequency, Subscriber, SubscriberStatus
from papermail.delivery.plan import enqueue_sends, plan
from papermail.subscribers.core import suppress
from tests.support.send_env import add_ranking, add_subscribers

# Monday 2026-11-23 is the first day of ISO week 48.
MONDAY_8_UTC = datetime(2026, 11, 23, 8, tzinfo=UTC)
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)


def rows(session) -> list[Delivery]:
    return list(session.scalars(sa.select(Delivery).order_by(Delivery.subscriber_id, Delivery.period_key)))


def plan_at(session, settings, when: datetime, **kwargs) -> list[int]:
    with freeze_time(when):
        return plan(session, settings, now=clock.now(), **kwargs)


@pytest.fixture
def world(session):
    """A ranking and three weekly Monday-08:00-UTC subscribers who joined long ago."""
    run_id = add_ranking(session, papers=120, as_of=LONG_AGO)
    ids = add_subscribers(session, 3, confirmed_at=LONG_AGO)
    return run_id, ids


def test_planning_twice_gives_one_row_each_with_papers_frozen(session, settings, world):
    run_id, ids = world
    first = plan_at(session, settings, MONDAY_8_UTC + timedelta(minutes=3))
    again = plan_at(session, settings, MONDAY_8_UTC + timedelta(minutes=8))
    assert len(first) == 3 and again == []
    planned = rows(session)
    assert [(r.subscriber_id, r.period_key, r.status) for r in planned] == [
        (i, "2026-W48", DeliveryStatus.PENDING) for i in ids
    ]
    assert all(len(r.paper_ids) == settings.digest_size for r in planned)
    assert planned[0].scheduled_for == MONDAY_8_UTC
    digest = session.scalars(sa.select(Digest)).one()
    assert (digest.period_key, digest.scoring_run_id) == ("2026-W48", run_id)


def test_the_digest_keeps_the_ranking_it_pinned_when_first_planned(session, settings, world):
    run_id, _ = world
    plan_at(session, settings, MONDAY_8_UTC + timedelta(minutes=3))
    add_ranking(session, as_of=MONDAY_8_UTC + timedelta(hours=1))  # trending moved on
    late_joiner = add_subscribers(session, 1, prefix="late", confirmed_at=LONG_AGO)
    assert len(plan_at(session, settings, MONDAY_8_UTC + timedelta(hours=2))) == 1
    assert session.scalars(sa.select(Digest)).one().scoring_run_id == run_id
    row = session.scalars(sa.select(Delivery).where(Delivery.subscriber_id == late_joiner[0])).one()
    assert session.get(Digest, row.digest_id).scoring_run_id == run_id


def test_not_yet_due_subscribers_wait_for_their_send_time(session, settings, world):
    assert plan_at(session, settings, MONDAY_8_UTC - timedelta(minutes=1)) != []  # last week's period
    assert {r.period_key for r in rows(session)} == {"2026-W47"}
    assert len(plan_at(session, settings, MONDAY_8_UTC)) == 3
    assert {r.period_key for r in rows(session)} == {"2026-W47", "2026-W48"}


def test_an_empty_selection_is_stored_as_skipped_with_its_reason(session, settings, world):
    add_subscribers(session, 1, prefix="robotics", confirmed_at=LONG_AGO, topics=["math.NA"])
    to_send = plan_at(session, settings, MONDAY_8_UTC + timedelta(minutes=3))
    skipped = [r for r in rows(session) if r.status == DeliveryStatus.SKIPPED]
    assert len(skipped) == 1 and skipped[0].id not in to_send
    assert skipped[0].skip_reason == "no new papers in math.NA this week"
    assert skipped[0].paper_ids == []


def test_only_mailable_subscribers_are_planned(session, settings, world):
    _, ids = world
    pending, unsubscribed, suppressed = session.scalars(sa.select(Subscriber).where(Subscriber.id.in_(ids)))
    pending.status = SubscriberStatus.PENDING
    unsubscribed.status = SubscriberStatus.UNSUBSCRIBED
    suppress(session, suppressed.email, "complaint")
    session.flush()
    assert plan_at(session, settings, MONDAY_8_UTC + timedelta(minutes=3)) == []
    assert rows(session) == []


def test_someone_who_joined_after_the_send_time_starts_next_period(session, settings, world):
    add_subscribers(session, 1, prefix="new", confirmed_at=MONDAY_8_UTC + timedelta(hours=1))
    assert len(plan_at(session, settings, MONDAY_8_UTC + timedelta(hours=2))) == 3
    assert len(plan_at(session, settings, MONDAY_8_UTC + timedelta(days=7, minutes=1))) == 4


@pytest.mark.parametrize(("policy", "status"), [("send-late-once", "pending"), ("skip", "skipped")])
def test_a_period_planned_after_downtime_is_sent_late_once_or_skipped(
    session, settings, world, policy, status
):
    late = replace(settings, late_policy=policy, late_limit_hours=24)
    plan_at(session, late, MONDAY_8_UTC + timedelta(hours=30))
    planned = rows(session)
    assert {r.status.value for r in planned} == {status}
    if policy == "skip":
        assert planned[0].skip_reason.startswith("late: planned 30 h after its send time (limit 24 h)")
    assert plan_at(session, late, MONDAY_8_UTC + timedelta(hours=31)) == []
    assert len(rows(session)) == 3


@pytest.mark.parametrize("chunk", [1000, 2])
def test_changing_the_send_day_mid_week_never_gives_a_second_digest(
    session, settings, world, chunk, monkeypatch
):
    # In chunks of 2, the last subscriber's chunk is a later one: its latest plans are read by id range.
    monkeypatch.setattr("papermail.delivery.plan.PLAN_CHUNK", chunk)
    _, ids = world
    plan_at(session, settings, MONDAY_8_UTC + timedelta(minutes=3))
    subscriber = session.get(Subscriber, ids[-1])
    with freeze_time(MONDAY_8_UTC + timedelta(days=2)):
        subscriber.send_weekday = 4  # Friday: still week 48
        subscriber.preferences_changed_at = clock.now()
        session.flush()
    assert plan_at(session, settings, MONDAY_8_UTC + timedelta(days=4, hours=1)) == []
    # Moving to a timezone where it is still last week (Sunday) must not plan week 47 either.
    subscriber.send_weekday, subscriber.send_hour, subscriber.timezone = 6, 20, "Pacific/Pago_Pago"
    session.flush()
    assert plan_at(session, settings, MONDAY_8_UTC + timedelta(days=4, hours=2)) == []
    assert [r.period_key for r in rows(session) if r.subscriber_id == ids[-1]] == ["2026-W48"]


def test_a_daily_subscriber_in_a_dst_zone_gets_one_digest_a_day_across_the_change(session, settings):
    add_ranking(session, papers=200, as_of=LONG_AGO)
    add_subscribers(
        session,
        1,
        confirmed_at=LONG_AGO,
        frequency=Frequency.DAILY,
        send_hour=2,  # 02:00 Berlin: repeated on 25 October 2026, skipped on 29 March 2026
        timezone="Europe/Berlin",
    )
    for start in (datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 10, 24, tzinfo=UTC)):
        now = start
        while now < start + timedelta(days=3):
            plan_at(session, settings, now)
            now += timedelta(minutes=90)
    keys = [r.period_key for r in rows(session)]
    # 28 March 00:00 UTC is 01:00 in Berlin, before that day's 02:00: the walk starts with the
    # 27th. 24 October 00:00 UTC is 02:00 summer time in Berlin: that day is due at once.
    march = ["2026-03-27", "2026-03-28", "2026-03-29", "2026-03-30"]
    october = ["2026-10-24", "2026-10-25", "2026-10-26"]
    assert keys == march + october


def test_an_explicit_period_plans_everyone_of_its_frequency_whatever_their_hour(session, settings, world):
    add_subscribers(session, 2, prefix="daily", confirmed_at=LONG_AGO, frequency=Frequency.DAILY)
    add_subscribers(session, 1, prefix="evening", confirmed_at=LONG_AGO, send_hour=23, send_weekday=6)
    weekly = plan_at(session, settings, MONDAY_8_UTC - timedelta(days=3), period_key="2026-W48")
    assert len(weekly) == 4
    daily = plan_at(session, settings, MONDAY_8_UTC, period_key="2026-11-20")
    assert len(daily) == 2
    with pytest.raises(ValueError, match="2026-W61 is not a valid ISO week"):
        plan(session, settings, now=clock.now(), period_key="2026-W61")


def test_nothing_is_planned_before_the_first_ranking(session, settings):
    add_subscribers(session, 2, confirmed_at=LONG_AGO)
    assert plan_at(session, settings, MONDAY_8_UTC + timedelta(minutes=3)) == []


def test_sends_are_queued_in_batches_only_when_the_plan_commits(session, settings, world):
    ids = plan_at(session, replace(settings, send_batch_size=2), MONDAY_8_UTC + timedelta(minutes=3))
    assert enqueue_sends(session, ids, settings=replace(settings, send_batch_size=2)) == 2
    queued = session.info[_PENDING_KEY]
    assert queued == [
        ("papermail.send_delivery_batch", (ids[:2],)),
        ("papermail.send_delivery_batch", (ids[2:],)),
    ]
    session.rollback()
    assert _PENDING_KEY not in session.info


def test_planning_on_sqlite_survives_workers_committing_between_its_reads_and_writes(
    send_env_factory, monkeypatch
):
    """The plan task's session begins IMMEDIATE: a plain BEGIN would fail its first insert."""
    from papermail.db import writer_session_factory
    from papermail.delivery import plan as planning
    from papermail.delivery.plan import plan_in_chunks

    monkeypatch.setattr(planning, "PLAN_CHUNK", 40)
    env = send_env_factory("sqlite", broker="embedded")
    with env.session() as session:
        add_ranking(session)
        add_subscribers(session, 200)
        session.commit()
    done = threading.Event()

    def busy_worker() -> None:  # commits as a sending worker does, all the time
        with env.session() as other:
            while not done.is_set():
                other.execute(
                    sa.update(Subscriber)
                    .where(Subscriber.email == "reader0@example.org")
                    .values(soft_bounce_count=Subscriber.soft_bounce_count + 1)
                )
                other.commit()

    thread = threading.Thread(target=busy_worker)
    thread.start()
    try:
        planned = 0
        with writer_session_factory(env.settings)() as session:
            for ids in plan_in_chunks(session, env.settings, now=clock.now(), period_key="2026-W48"):
                session.commit()
                planned += len(ids)
    finally:
        done.set()
        thread.join()
    assert planned == 200
