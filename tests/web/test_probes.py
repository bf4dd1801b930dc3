"""/readyz on the embedded broker: no connection leaks, one probe at a time, the site keeps answering."""

from __future__ import annotations

import gc
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from kombu.transport.sqlalchemy import Channel

from papermail import config
from papermail.celery_app import declare_embedded_queue, reset_celery
from papermail.web import create_app
from papermail.web.probes import ReadinessCache

CALLS, THREADS = 1_000, 8


def _checked_out(app) -> dict[str, int]:
    """Connections in use: the app's database pool and kombu's broker engines."""
    sessions = app.extensions["papermail"].sessions
    broker = sum(engine.pool.checkedout() for engine, _ in Channel._engines.values())
    return {"database": sessions.kw["bind"].pool.checkedout(), "broker": broker}


def test_a_thousand_probes_leak_nothing_and_the_home_page_keeps_answering(settings, tmp_path):
    embedded = replace(settings, broker_url=f"sqla+sqlite:///{tmp_path}/broker.db")
    config.use_settings(embedded)
    reset_celery()
    declare_embedded_queue(embedded)
    # No cache: every call that finds no probe running starts one, the worst case for leaks.
    app = create_app(embedded, {"TESTING": True, "READINESS_TTL": 0})
    assert app.test_client().get("/readyz").status_code == 200
    gc.collect()  # what start-up left behind (declaring the queue) is not the probe's
    before = _checked_out(app)
    stop = threading.Event()
    home_codes: list[int] = []

    def probe(count: int) -> list[int]:
        client = app.test_client()
        return [client.get("/readyz").status_code for _ in range(count) if not stop.is_set()]

    def browse() -> None:
        client = app.test_client()
        while not stop.is_set():
            home_codes.append(client.get("/").status_code)

    home = threading.Thread(target=browse)
    home.start()
    try:
        with ThreadPoolExecutor(THREADS) as pool:
            answers = [code for codes in pool.map(probe, [CALLS // THREADS] * THREADS) for code in codes]
    finally:
        stop.set()
        home.join()
    assert answers == [200] * CALLS
    assert home_codes and set(home_codes) == {200}
    assert _checked_out(app) == before


def test_the_answer_is_kept_for_its_lifetime_and_one_probe_runs_at_a_time():
    calls = []
    gate = threading.Event()

    def probe() -> dict[str, str]:
        calls.append(1)
        gate.wait(5)
        return {"database": "ok", "broker": "ok"}

    slow = ReadinessCache(ttl=60, timeout=0.05)
    assert slow.states(probe) == {"database": "unreachable", "broker": "unreachable"}
    assert slow.states(probe)["broker"] == "unreachable" and len(calls) == 1  # still the same probe
    gate.set()
    assert slow.states(probe) == {"database": "ok", "broker": "ok"}
    assert slow.states(probe) == {"database": "ok", "broker": "ok"} and len(calls) == 1
