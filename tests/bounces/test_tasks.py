"""The processing task: queued only after the message is committed, run by a real worker; the sweep
processes a message whose queue message was lost."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from papermail import clock
from papermail.bounces.store import Received, insert_inbound_messages, store_group
from papermail.db.models import InboundMessage, Subscriber, SubscriberStatus
from papermail.tasks.bounces import sweep_inbound_messages
from tests.conftest import wait_for
from tests.support.send_env import add_subscribers

DSN = (Path(__file__).parent / "samples" / "mailbox_full_dsn.eml").read_bytes().replace(b"5.2.2", b"5.1.1")


def _states(env) -> list[str]:
    with env.session() as session:
        return list(session.scalars(sa.select(InboundMessage.state).order_by(InboundMessage.id)))


@pytest.mark.slow
def test_a_real_worker_processes_a_stored_message_after_commit(send_env_factory, worker_factory):
    env = send_env_factory("postgresql", broker="redis")
    with env.session() as session:
        add_subscribers(session, 1)
        store_group(session, [Received(b"not committed")], via="smtp")
        session.rollback()  # a rolled-back store queues nothing
        add_subscribers(session, 1)
        store_group(session, [Received(DSN, recipient="bounces@papermail.test")], via="smtp")
        session.commit()
    assert env.queued_tasks() == 1
    worker = worker_factory(env.environ)
    wait_for(lambda: _states(env) == ["processed"], timeout=60, message=f"processing; log:\n{worker.log()}")
    with env.session() as session:
        status = session.scalar(sa.select(Subscriber.status).where(Subscriber.email == "reader0@example.org"))
    assert status == SubscriberStatus.BOUNCED


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_sweep_processes_a_message_whose_queue_message_was_lost(send_env_factory, backend):
    env = send_env_factory(backend, broker="embedded")
    with env.session() as session:
        add_subscribers(session, 1)
        insert_inbound_messages(session, [Received(DSN)], via="imap")  # no task: as if the broker lost it
        session.commit()
    assert sweep_inbound_messages() == 0  # too recent: its worker may still be on it
    with freeze_time(clock.now() + timedelta(minutes=6)):
        assert sweep_inbound_messages() == 1
    assert _states(env) == ["processed"]
    with freeze_time(clock.now() + timedelta(days=91)):
        sweep_inbound_messages()
    assert _states(env) == []  # the raw report is gone after 90 days; its verdict stays
    with env.session() as session:
        assert (
            session.scalar(sa.text("SELECT count(*) FROM bounce_events WHERE inbound_message_id IS NULL"))
            == 1
        )
