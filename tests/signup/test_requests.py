"""Recorded signups whose queue message was lost are processed by the sweeper task."""

from datetime import timedelta

import sqlalchemy as sa
from freezegun import freeze_time

from papermail import clock, config
from papermail.celery_app import reset_celery
from papermail.db import session_scope
from papermail.db.bookkeeping import SignupRequest
from papermail.db.models import Subscriber, SubscriberStatus
from papermail.signup.requests import SWEEP_AFTER, record_request
from papermail.subscribers.preferences import Preferences
from papermail.tasks.web import BEAT_SCHEDULE, sweep_signup_requests
from tests.conftest import make_settings


def test_the_sweeper_processes_a_request_whose_message_was_lost(database, tmp_path):
    settings = make_settings(tmp_path, database_url=database.fresh(), broker_url="memory://")
    config.use_settings(settings)
    reset_celery()
    try:
        with freeze_time(clock.now()) as frozen:
            with session_scope(settings) as session:
                record_request(session, "late@example.org", Preferences(topics=["cs.LG"]))
            assert sweep_signup_requests() == 0  # its task may still be on its way
            frozen.tick(SWEEP_AFTER + timedelta(seconds=1))
            assert sweep_signup_requests() == 1
            assert sweep_signup_requests() == 0
        with session_scope(settings) as session:
            subscriber = session.scalars(sa.select(Subscriber)).one()
            assert (subscriber.email, subscriber.status) == ("late@example.org", SubscriberStatus.PENDING)
            assert subscriber.confirmation_sent_at is not None
            assert session.scalar(sa.select(sa.func.count()).select_from(SignupRequest)) == 0
    finally:
        config.use_settings(None)
        reset_celery()


def test_the_sweeper_runs_every_minute():
    entry = BEAT_SCHEDULE["sweep-signup-requests"]
    assert entry["task"] == "papermail.sweep_signup_requests" and entry["schedule"] == 60
