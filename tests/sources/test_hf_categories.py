"""Papers first seen on Hugging Face get their arXiv categories on that fetch, so topic readers see them."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from papermail import trending
from papermail.db.models import Paper
from papermail.sources.arxiv_api import ID_BATCH_SIZE
from papermail.sources.runner import run_fetch
from tests.support.feeds import _FEED_HEAD, API_PATH, HF_PATH, Reply, Request, Responder
from tests.support.hf_daily_papers import DailyPapers, FeaturedPaper, ramp

NOW = datetime(2026, 11, 30, 8, 15, tzinfo=UTC)
_RECORDED_ID, _RECORDED_PUBLISHED = "1605.08386", "2016-05-26T17:59:46Z"


def arxiv_api_knowing(api_fixtures: Path, categories: dict[str, str]) -> Responder:
    """The arXiv API answering id lookups for ``categories``' ids (id -> primary category), each entry
    the recorded answer for 1605.08386 with its id, category and date replaced; other ids are absent."""
    recorded = next(api_fixtures.glob(f"id_{_RECORDED_ID}_s0_m100_*.xml")).read_text()
    template = re.search(r"<entry>.*?</entry>", recorded, re.DOTALL)[0]
    template = re.sub(r'\s*<category term="math.ST"[^>]*/>', "", template)

    def entry(arxiv_id: str, category: str) -> str:
        published = f"20{arxiv_id[:2]}-{arxiv_id[2:4]}-02T10:00:00Z"
        text = template.replace(_RECORDED_ID, arxiv_id).replace(_RECORDED_PUBLISHED, published)
        return text.replace("math.CO", category)

    def respond(request: Request) -> Reply:
        ids = [i for i in request.query.get("id_list", "").split(",") if i]
        entries = [entry(i, categories[i]) for i in ids if i in categories]
        body = _FEED_HEAD.format(total=len(entries)) + "\n".join(entries) + "\n</feed>\n"
        return Reply(200, body.encode(), {"Content-Type": "application/atom+xml"})

    return respond


def featured(n: int) -> FeaturedPaper:
    at = NOW.replace(hour=6, minute=0)
    return FeaturedPaper(f"2611.{n:05d}", f"Paper {n}", at, at - timedelta(days=1), ramp((24, 50 + n)))


@pytest.fixture
def fetch(session, fetch_settings, http_client, pacer):
    refreshing = replace(fetch_settings, hf_refresh_days=14, hf_refresh_max_requests=40)
    return lambda: run_fetch(session, refreshing, "huggingface", http=http_client, pacer=pacer)


def _categories(session) -> dict[str, str | None]:
    session.expire_all()
    return dict(session.execute(sa.select(Paper.arxiv_id, Paper.primary_category)).all())


def test_every_paper_hugging_face_lists_gets_its_category_in_batches_of_100(
    session, fetch, feed_server, api_fixtures, fake_time, fetch_settings
):
    papers = [featured(n) for n in range(150)]
    feed_server.route(HF_PATH, DailyPapers(papers))
    robots = {p.arxiv_id: "cs.RO" if int(p.arxiv_id[5:]) % 2 else "astro-ph.GA" for p in papers}
    late = "2611.00149"  # the API's index lags the listings: not there on the first fetch
    feed_server.route(
        API_PATH, arxiv_api_knowing(api_fixtures, {k: v for k, v in robots.items() if k != late})
    )
    with freeze_time(NOW):
        first = fetch()
    lookups = [r.query["id_list"].split(",") for r in feed_server.requests_to(API_PATH)]
    assert [len(batch) for batch in lookups] == [ID_BATCH_SIZE, 50]  # one batched pass, paced
    assert sorted(i for batch in lookups for i in batch) == sorted(robots)
    assert fake_time.sleeps == [fetch_settings.arxiv_delay_seconds]
    assert (first.status, first.new_papers, first.errors) == ("ok", 150, 0)
    assert _categories(session) == {**robots, late: None}

    with freeze_time(NOW):  # readers of either topic see their papers, however they were first seen
        params = trending.TrendParams.from_settings(fetch_settings, trending.WEEKLY)
        run = trending.score_papers(session, params, keep_runs=5)
    for topic in ("cs.RO", "astro-ph", "astro-ph.GA"):
        listed = {p.paper.arxiv_id for p in trending.ranked_papers(session, run.run_id, topics=[topic])}
        assert listed == {k for k, v in robots.items() if v.startswith(topic) and k != late}

    feed_server.route(API_PATH, arxiv_api_knowing(api_fixtures, robots))
    with freeze_time(NOW + timedelta(hours=1)):  # the next fetch retries the one still missing
        fetch()
    assert _categories(session) == robots
    assert [r.query["id_list"] for r in feed_server.requests_to(API_PATH)][2:] == [late]
