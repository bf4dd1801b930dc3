"""The database broker's transport: a worker asked to stop neither waits out its polls nor takes more."""

import threading
import time

import pytest
from celery.worker import state as worker_state
from kombu import Consumer, Producer, Queue

from papermail import celery_app

# Far longer than the few hundredths of a second a stop takes to be noticed.
NOTICED_WITHIN_SECONDS = 1.0


@pytest.fixture
def channel(settings):
    """A channel on the test's embedded broker, through the app's own connection settings."""
    assert settings.broker_url.startswith("sqla+sqlite:")
    with celery_app.get_celery().connection_for_write() as connection:
        assert isinstance(connection.transport, celery_app.DatabaseBroker)
        yield connection.default_channel


def _consume(channel, received: list) -> Consumer:
    queue = Queue("stopping", channel=channel)
    queue.declare()
    return Consumer(channel, [queue], callbacks=[lambda body, message: received.append(body)])


def test_a_stopping_worker_takes_no_new_message(channel, monkeypatch):
    received: list = []
    with _consume(channel, received):
        Producer(channel).publish({"n": 1}, routing_key="stopping")
        monkeypatch.setattr(worker_state, "should_stop", 0)  # a warm shutdown's exit code
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            channel.connection.client.drain_events(timeout=5)
        assert time.monotonic() - started < NOTICED_WITHIN_SECONDS
        assert received == []
        monkeypatch.setattr(worker_state, "should_stop", None)
        channel.connection.client.drain_events(timeout=5)
    assert received == [{"n": 1}]


def test_an_idle_wait_for_messages_ends_as_soon_as_a_stop_is_asked_for(channel, monkeypatch):
    monkeypatch.setattr(worker_state, "should_terminate", None)
    # As a signal handler would, while the worker naps between two polls of the empty queue.
    asked = threading.Timer(0.2, setattr, (worker_state, "should_terminate", 1))
    received: list = []
    with _consume(channel, received):
        started = time.monotonic()
        asked.start()
        with pytest.raises(TimeoutError):
            channel.connection.client.drain_events(timeout=30)
        asked.join()
    assert time.monotonic() - started < NOTICED_WITHIN_SECONDS
    assert received == []


def test_an_idle_wait_without_a_stop_lasts_its_timeout(channel):
    with _consume(channel, []), pytest.raises(TimeoutError):
        started = time.monotonic()
        channel.connection.client.drain_events(timeout=0.3)
    assert time.monotonic() - started >= 0.3


def test_only_the_database_brokers_get_the_transport():
    embedded = celery_app.broker_connection("sqla+sqlite:////data/broker.db")
    assert embedded["hostname"] == "sqlite:////data/broker.db"
    assert embedded["transport"] == "papermail.celery_app:DatabaseBroker"
    assert celery_app.broker_connection("redis://localhost:6379/0")["transport"] is None
