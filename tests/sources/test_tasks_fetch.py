"""Fetch settings, the beat schedule, scoring after a fetch, and a real worker running a fetch."""

import json
import re
import uuid

import pytest
import redis
import sqlalchemy as sa

from papermail import celery_app, config
from papermail.db import get_engine
from papermail.db.bookkeeping import FetchRun
from papermail.db.models import FetchStatus, SignalSnapshot
from papermail.sources.runner import run_fetch
from papermail.task_names import SCORE_PAPERS
from papermail.tasks.fetch import BEAT_SCHEDULE
from papermail.tasks.schedules import cron_schedule
from tests.config.refusal import refusal
from tests.conftest import REDIS_URL, make_settings, settings_environ, wait_for
from tests.support.feeds import API_PATH, HF_PATH, arxiv_api, point_at, serve_file, status


def test_fetch_settings_have_polite_defaults(tmp_path):
    settings = make_settings(tmp_path, **{"from": "Digest <digest@example.org>"})
    assert settings.fetch_contact == "digest@example.org"
    assert settings.arxiv_delay_seconds == 3.0
    assert (settings.fetch_retries, settings.fetch_backoff_seconds) == (3, 2.0)
    assert settings.arxiv_fetch_cron == "30 5,9 * * mon-fri"
    assert settings.hf_fetch_cron == "15 * * * *"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ARXIV_FETCH_CRON", "30 5 * *", "must be a crontab line"),
        ("HF_FETCH_CRON", "99 * * * *", "bad crontab '99 \\* \\* \\* \\*'"),
        ("FETCH_RETRIES", "-1", "must be 0 or a positive whole number"),
        ("ARXIV_API_DELAY", "soon", "must be a number, got 'soon'"),
        ("FETCH_CONTACT", "nobody", "must be an email address"),
    ],
)
def test_bad_fetch_settings_name_the_variable(tmp_path, variable, value, message):
    assert re.search(message, refusal(tmp_path, variable, value))


def test_beat_runs_arxiv_on_weekdays_and_hugging_face_hourly_as_configured(tmp_path):
    config.use_settings(make_settings(tmp_path, hf_fetch_cron="*/20 * * * *"))
    try:
        schedule = celery_app.beat_schedule()
    finally:
        config.use_settings(None)
    assert schedule["fetch-arxiv"] == {
        "task": "papermail.fetch_arxiv",
        "schedule": cron_schedule("30 5,9 * * mon-fri"),
    }
    hf = schedule["fetch-huggingface"]
    assert hf["task"] == "papermail.fetch_huggingface"
    assert hf["schedule"].minute == {0, 20, 40}
    # The community sources have their own schedules; Bluesky's only once it is configured.
    assert set(BEAT_SCHEDULE) == {
        "fetch-arxiv",
        "fetch-huggingface",
        "fetch-github",
        "fetch-hackernews",
        "fetch-semanticscholar",
    }


@pytest.fixture
def redis_queue(settings, feed_server):
    """Settings whose broker is real Redis with a queue of this test's own; the queue's messages."""
    queue = f"papermail-test-{uuid.uuid4().hex[:8]}"
    pointed = point_at(settings, feed_server, broker_url=REDIS_URL, celery_queue=queue, fetch_retries=0)
    config.use_settings(pointed)
    celery_app.reset_celery()
    client = redis.Redis.from_url(REDIS_URL)

    def task_names() -> list[str]:
        return [json.loads(raw)["headers"]["task"] for raw in client.lrange(queue, 0, -1)]

    yield pointed, task_names
    client.delete(queue)
    client.close()
    config.use_settings(None)
    celery_app.reset_celery()


def test_a_fetch_enqueues_scoring_after_it_commits(session, redis_queue, feed_server, shared_fixtures, pacer):
    settings, task_names = redis_queue
    feed_server.route(HF_PATH, serve_file(shared_fixtures / "huggingface" / "hf_daily_papers.json"))
    feed_server.route(API_PATH, arxiv_api(shared_fixtures / "arxiv-api"))
    assert run_fetch(session, settings, "huggingface", pacer=pacer).status == "ok"
    assert task_names() == [SCORE_PAPERS]


def test_a_failed_fetch_enqueues_no_scoring(session, redis_queue, feed_server, pacer):
    settings, task_names = redis_queue
    feed_server.route(HF_PATH, status(500))
    assert run_fetch(session, settings, "huggingface", pacer=pacer).status == "failed"
    assert task_names() == []


@pytest.mark.slow
def test_a_real_worker_runs_the_beat_task_end_to_end(
    database, tmp_path, worker_factory, feed_server, shared_fixtures
):
    feed_server.route(HF_PATH, serve_file(shared_fixtures / "huggingface" / "hf_daily_papers.json"))
    feed_server.route(API_PATH, arxiv_api(shared_fixtures / "arxiv-api"))
    database_url = database.fresh()
    environ = settings_environ(
        tmp_path,
        database_url=database_url,
        broker_url=REDIS_URL,
        celery_queue=f"papermail-test-{uuid.uuid4().hex[:8]}",
        hf_api_url=feed_server.url(HF_PATH),
        arxiv_api_url=feed_server.url(API_PATH),
        arxiv_api_delay="0",
    )
    settings = config.load_settings(environ)
    config.use_settings(settings)
    celery_app.reset_celery()
    try:
        worker = worker_factory(environ)
        celery_app.get_celery().send_task("papermail.fetch_huggingface")

        def finished_run():
            with get_engine(database_url).connect() as conn:
                return conn.execute(
                    sa.select(FetchRun.status, FetchRun.signals_added).where(
                        FetchRun.finished_at.is_not(None)
                    )
                ).first()

        run = wait_for(finished_run, timeout=60, message=f"the worker's fetch; log:\n{worker.log()}")
        assert tuple(run) == (FetchStatus.OK, 76)
        with get_engine(database_url).connect() as conn:
            assert conn.scalar(sa.select(sa.func.count()).select_from(SignalSnapshot)) == 76
    finally:
        config.use_settings(None)
        celery_app.reset_celery()
