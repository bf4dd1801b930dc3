"""The scoring task: called directly, scheduled on beat, and run by a real worker after a commit."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from papermail import celery_app, clock, config
from papermail.celery_app import enqueue_after_commit
from papermail.db import get_engine, session_scope
from papermail.db.models import ScoringRun
from papermail.tasks.trending import score_papers
from papermail.trending import latest_run, ranked_papers
from tests.conftest import REDIS_URL, settings_environ, wait_for
from tests.support.trending import NOW, Corpus


def test_the_task_ranks_every_window_now_and_returns_the_run_ids(committed_settings, frozen):
    with session_scope(committed_settings) as session:
        Corpus(session).paper("2611.00001", age_hours=2)
    run_ids = score_papers()
    with session_scope(committed_settings) as session:
        for window in ("24h", "7d"):
            run = latest_run(session, window)
            assert (run.id, run.as_of, run.paper_count) == (run_ids[window], NOW, 1)
            assert [p.evidence for p in ranked_papers(session, run.id)] == ["no signals yet · 2 hours old"]


def test_beat_rescores_hourly_as_a_safety_net():
    entry = celery_app.beat_schedule()["score-papers-safety-net"]
    assert entry["task"] == "papermail.score_papers"
    assert entry["schedule"].minute == {30}
    assert len(entry["schedule"].hour) == 24


def _runs(database_url: str) -> list[tuple[int, int]]:
    with get_engine(database_url).connect() as conn:
        return conn.execute(sa.select(ScoringRun.id, ScoringRun.paper_count)).all()


@pytest.mark.slow
def test_a_real_worker_scores_after_the_fetch_commits(databases, tmp_path, worker_factory):
    database_url = databases("postgresql").fresh()
    environ = settings_environ(tmp_path, database_url=database_url, broker_url=REDIS_URL)
    settings = config.load_settings(environ)
    config.use_settings(settings)
    celery_app.reset_celery()
    try:
        worker = worker_factory(environ)
        with session_scope(settings) as session:  # what the fetch task does after storing signals
            Corpus(session, now=clock.now()).paper("2611.00001", age_hours=1)
            enqueue_after_commit(session, "papermail.score_papers")
        runs = wait_for(
            lambda: _runs(database_url), timeout=60, message=f"a scoring run; worker log:\n{worker.log()}"
        )
        assert [count for _, count in runs] == [1, 1]  # one run per window
    finally:
        config.use_settings(None)
        celery_app.reset_celery()
