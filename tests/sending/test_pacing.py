"""The global send rate, across limiters and in a batch, and the give-up period of a failing row."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from papermail import clock
from papermail.db.models import Delivery, DeliveryStatus
from papermail.delivery.send import send_batch
from papermail.sending.pacing import DatabaseSendPacer, RedisSendPacer
from tests.conftest import REDIS_URL, RUN_ID
from tests.support.send_env import deliveries, planned_week


def _spread(timestamps: list[float], rate: float) -> tuple[int, float]:
    """The most events in any one-second window, and the time from first to last."""
    stamps = sorted(timestamps)
    busiest = max(sum(1 for t in stamps if start <= t < start + 1.0) for start in stamps)
    return busiest, stamps[-1] - stamps[0]


def _hammer(limiters, per_limiter: int) -> list[float]:
    stamps: list[float] = []
    lock = threading.Lock()

    def run(limiter) -> None:
        for _ in range(per_limiter):
            limiter.wait_turn()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=run, args=(limiter,)) for limiter in limiters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return stamps


@pytest.mark.parametrize("store", ["redis", "sqlite", "postgresql"])
def test_the_send_rate_holds_across_independent_limiters(store, send_env_factory):
    rate = 20.0
    if store == "redis":
        key = f"papermail-test-{RUN_ID}-{time.monotonic_ns()}:send-rate"
        limiters = [RedisSendPacer(REDIS_URL, key, rate) for _ in range(3)]
    else:
        env = send_env_factory(store, broker="embedded")
        limiters = [DatabaseSendPacer(env.settings, "send-rate", rate) for _ in range(3)]
    busiest, span = _spread(_hammer(limiters, 10), rate)
    assert busiest <= rate + 1
    assert span >= 29 / rate - 0.05


def test_send_batch_keeps_to_the_global_rate(send_env_factory, smtp_server):
    env, ids = planned_week(send_env_factory, smtp_server, "postgresql", 12, send_rate="10")
    started = time.monotonic()
    assert send_batch(env.settings, ids).sent == 12
    assert time.monotonic() - started >= 1.0
    busiest, _ = _spread([m.at for m in smtp_server.messages], 10)
    assert busiest <= 11


def test_a_row_that_keeps_failing_is_exhausted_after_the_give_up_period(send_env_factory, smtp_server):
    # 0.0005 h = 1.8 s, retries every 0.2-0.5 s.
    env, ids = planned_week(
        send_env_factory, smtp_server, "sqlite", 1, broker="embedded", give_up_hours="0.0005"
    )
    smtp_server.script("reader0@example.org", *["data:451"] * 100)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        report = send_batch(env.settings, ids)
        if report.exhausted_ids:
            break
        time.sleep(0.2)
    with env.session() as session:
        row = deliveries(session)[0]
        assert row.status == DeliveryStatus.EXHAUSTED and row.next_attempt_at is None
        assert row.last_smtp_code == 451 and row.attempts >= 3
        assert (clock.now() - row.first_attempt_at).total_seconds() >= 1.8
        attempts = row.attempts
    assert send_batch(env.settings, ids).not_claimed == 1  # never tried again
    with env.session() as session:
        assert session.scalar(sa.select(Delivery.attempts)) == attempts
    assert smtp_server.received_by("reader0@example.org") == []
