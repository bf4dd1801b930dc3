"""A paper whose first-version date is unknown is bounded by its arXiv id's month, never ranked as new."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from papermail import trending
from papermail.arxiv_ids import id_month_start
from papermail.db.models import Paper
from papermail.sources.runner import run_fetch
from papermail.trending.score import build_evidence, format_age_bound
from tests.sources.conftest import API_PATH, DATA_DIR, RSS_PATH, serve_file, status

NOW = datetime(2026, 4, 28, 6, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("arxiv_id", "month"),
    [
        ("1903.04209", datetime(2019, 3, 1, tzinfo=UTC)),  # new style: YYMM.NNNNN
        ("2611.00001v2", datetime(2026, 11, 1, tzinfo=UTC)),
        ("0704.0001", datetime(2007, 4, 1, tzinfo=UTC)),  # the first new-style id
        ("hep-th/9901001", datetime(1999, 1, 1, tzinfo=UTC)),  # old style: archive/YYMMNNN
        ("math.GT/0309136", datetime(2003, 9, 1, tzinfo=UTC)),
        ("cond-mat/9108001", datetime(1991, 8, 1, tzinfo=UTC)),
        ("1913.00001", None),  # no month 13
        ("not-an-id", None),
    ],
)
def test_an_arxiv_id_gives_the_month_of_its_first_version(arxiv_id, month):
    assert id_month_start(arxiv_id) == month


def test_a_replacement_of_an_old_paper_whose_lookup_failed_is_not_ranked(
    session, fetch_settings, http_client, pacer, feed_server
):
    feed_server.route(RSS_PATH + "cs.AI", serve_file(DATA_DIR / "arxiv_rss_announce_types.xml"))
    feed_server.route(API_PATH, status(503))  # the API is down: no first-version dates today
    with freeze_time(NOW):
        summary = run_fetch(session, fetch_settings, "arxiv", http=http_client, pacer=pacer)
        assert summary.status == "partial"
        replaced = session.scalar(sa.select(Paper).where(Paper.arxiv_id == "1605.08386"))
        assert (replaced.published_at, replaced.id_month) == (None, datetime(2016, 5, 1, tzinfo=UTC))
        for window in trending.WINDOWS:
            params = trending.TrendParams.from_settings(fetch_settings, window)
            run = trending.score_papers(session, params, keep_runs=5)
            ranked = [p.paper.arxiv_id for p in trending.ranked_papers(session, run.run_id)]
            assert "2604.30001" in ranked  # the new paper is
            assert "1605.08386" not in ranked  # the 2016 paper is past the age horizon


def test_an_unknown_age_is_told_as_an_upper_bound():
    assert format_age_bound(0.2) == "up to an hour old"
    assert format_age_bound(30) == "up to 1 day old"
    assert build_evidence([], 0.5, 24, age_known=False) == "no signals yet · up to an hour old"
    assert "under an hour old" not in build_evidence([], 0.5, 24, age_known=False)
