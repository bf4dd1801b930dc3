"""Confirmation emails are as durable as digests: owed in a row, sent once, swept when lost."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa

from papermail import clock, config
from papermail.celery_app import reset_celery
from papermail.db.models import Confirmation, DeliveryStatus, Subscriber
from papermail.delivery.sweep import sweep
from papermail.signup import confirmations, flow
from papermail.signup.confirmations import confirmation_counts
from papermail.signup.limits import DatabaseRateLimiter
from papermail.subscribers.preferences import parse_preferences
from tests.conftest import BACKENDS, wait_for

pytestmark = pytest.mark.slow

ADDRESS = "late@example.org"
NONE = {"owed": 0, "sent": 0, "failed": 0, "uncertain": 0, "skipped": 0}


def sign_up_while_the_broker_is_down(env) -> int:
    """A signup whose confirmation can't be queued after its commit; return the subscriber id."""
    down = replace(env.settings, broker_url="redis://127.0.0.1:9/0")
    config.use_settings(down)
    reset_celery()
    try:
        with env.session() as session:
            outcome = flow.request_signup(
                session,
                down,
                email=ADDRESS,
                preferences=parse_preferences(topics=["cs.LG"], keywords=""),
                limiter=DatabaseRateLimiter(),
            )
            session.commit()
            assert outcome == flow.SignupOutcome.CONFIRMATION_QUEUED
            return session.scalars(sa.select(Subscriber.id).where(Subscriber.email == ADDRESS)).one()
    finally:
        config.use_settings(env.settings)
        reset_celery()


def confirmation_status(env) -> DeliveryStatus:
    with env.session() as session:
        return session.scalars(sa.select(Confirmation.status)).one()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_signup_made_while_the_broker_was_down_is_confirmed_after_the_sweeper_runs(
    send_env_factory, smtp_server, worker_factory, backend
):
    env = send_env_factory(backend, mail_url=smtp_server.url)
    sign_up_while_the_broker_is_down(env)
    assert env.queued_tasks() == 0, "nothing could be queued"
    with env.session() as session:
        assert confirmation_counts(session)["owed"] == 1
    worker_factory(env.environ)
    # The broker is back; one sweeper cycle after PAPERMAIL_REQUEUE_AFTER_SECONDS queues it again.
    with env.session() as session:
        later = clock.now() + timedelta(seconds=env.settings.requeue_after_seconds)
        report = sweep(session, env.settings, now=later)
        session.commit()
    assert len(report.confirmations.requeued_ids) == 1
    wait_for(lambda: confirmation_status(env) == DeliveryStatus.SENT, message="the confirmation to be sent")
    [message] = smtp_server.received_by(ADDRESS)
    assert b"/confirm/" in message.data
    with env.session() as session:
        assert confirmation_counts(session) == {
            "owed": 0,
            "sent": 1,
            "failed": 0,
            "uncertain": 0,
            "skipped": 0,
        }
        # Sent once: another sweep finds nothing owed.
        assert sweep(session, env.settings, now=later + timedelta(hours=1)).confirmations.requeued_ids == []


def test_a_confirmation_whose_worker_died_after_the_hand_over_is_uncertain_never_resent(send_env_factory):
    env = send_env_factory("sqlite", broker="embedded")
    subscriber_id = sign_up_while_the_broker_is_down(env)
    with env.session() as session:
        session.execute(
            sa.update(Confirmation).values(
                status=DeliveryStatus.SENDING,
                claims=1,
                attempt_started_at=clock.now(),
                lease_until=clock.now() - timedelta(seconds=1),
            )
        )
        session.commit()
        report = sweep(session, env.settings, now=clock.now())
        session.commit()
        assert report.confirmations.uncertain_ids != [] and report.confirmations.requeued_ids == []
    assert confirmations.send_confirmation(env.settings, subscriber_id).counts()["sent"] == 0
    assert confirmation_status(env) == DeliveryStatus.UNCERTAIN


def test_a_newer_signup_supersedes_an_unsent_confirmation(send_env_factory):
    env = send_env_factory("sqlite", broker="embedded")
    sign_up_while_the_broker_is_down(env)
    sign_up_while_the_broker_is_down(env)
    with env.session() as session:
        statuses = session.execute(sa.select(Confirmation.status, Confirmation.skip_reason)).all()
    assert sorted(statuses) == [
        (DeliveryStatus.PENDING, None),
        (DeliveryStatus.SKIPPED, "superseded by a newer signup request"),
    ]
