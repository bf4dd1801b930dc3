"""A paper whose first-version date is unknown is bounded by its arXiv id's month, never ranked as new."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from papermail import trending
from papermail.arxiv_ids import id_month_start
from papermail.db import get_engine, migrate
from papermail.db.models import Paper
from papermail.db.types import UTCDateTime
from papermail.sources.ingest import upsert_papers
from papermail.sources.records import PaperRecord
from papermail.sources.runner import run_fetch
from papermail.trending.evidence import format_age_bound, format_unknown_age
from papermail.trending.score import build_evidence
from tests.conftest import BACKENDS, RUN_ID, _created_pg_databases, _pg_admin, _pg_url, make_settings
from tests.sources.conftest import DATA_DIR
from tests.support.feeds import API_PATH, RSS_PATH, serve_file, status

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
    assert build_evidence([], 50, 24, age_known=False) == "no signals yet · up to 2 days old"
    assert "under an hour old" not in build_evidence([], 0.5, 24, age_known=False)


def _unmigrated_database(backend: str, tmp_path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    name = f"pm_{RUN_ID}_{uuid.uuid4().hex[:8]}"
    with _pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    _created_pg_databases.append(name)
    return _pg_url(name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_migration_drops_first_version_dates_later_than_the_ids_month(backend, tmp_path):
    settings = make_settings(tmp_path, database_url=_unmigrated_database(backend, tmp_path))
    migrate.upgrade(settings, "0005")
    papers = sa.table(
        "papers",
        *(sa.column(name) for name in ("arxiv_id", "version", "title", "abstract", "on_huggingface")),
        *(sa.column(name, sa.JSON()) for name in ("authors", "categories")),
        *(
            sa.column(name, UTCDateTime())
            for name in ("published_at", "id_month", "first_seen_at", "last_seen_at")
        ),
    )
    dates = {
        "2202.06515": datetime(2026, 4, 28, 4, tzinfo=UTC),  # an old paper's cross-list, dated by its listing
        "2603.00001": datetime(2026, 4, 1, 3, tzinfo=UTC),  # announced on the New York evening of 31 March
        "2604.30001": datetime(2026, 4, 28, 4, tzinfo=UTC),  # a new paper, dated right
    }
    engine = get_engine(settings.database_url)
    with engine.begin() as connection:
        connection.execute(
            papers.insert(),
            [
                {
                    "arxiv_id": arxiv_id,
                    "version": 1,
                    "title": arxiv_id,
                    "abstract": "",
                    "on_huggingface": False,
                    "authors": [],
                    "categories": ["cs.AI"],
                    "published_at": published,
                    "id_month": id_month_start(arxiv_id),
                    "first_seen_at": NOW,
                    "last_seen_at": NOW,
                }
                for arxiv_id, published in dates.items()
            ],
        )
    migrate.upgrade(settings, "0008")
    with engine.connect() as connection:
        stored = dict(connection.execute(sa.select(papers.c.arxiv_id, papers.c.published_at)).all())
    engine.dispose()
    assert stored == {
        "2202.06515": None,
        "2603.00001": datetime(2026, 4, 1, tzinfo=UTC),
        "2604.30001": datetime(2026, 4, 28, 4, tzinfo=UTC),
    }


_LISTING = """<?xml version='1.0' encoding='UTF-8'?>
<rss xmlns:arxiv="http://arxiv.org/schemas/atom" version="2.0"><channel>
<title>cs.AI updates on arXiv.org</title><link>http://rss.arxiv.org/rss/cs.AI</link>
<pubDate>Tue, 28 Apr 2026 00:00:00 -0400</pubDate>
{items}
</channel></rss>"""
_ITEM = """<item><title>{title}</title><link>https://arxiv.org/abs/{id}</link>
<description>arXiv:{id} Announce Type: {kind} Abstract: {title}.</description>
<guid isPermaLink="false">oai:arXiv.org:{id}</guid><category>cs.AI</category>
<pubDate>Tue, 28 Apr 2026 00:00:00 -0400</pubDate><arxiv:announce_type>{kind}</arxiv:announce_type></item>"""


def test_an_old_papers_cross_list_in_todays_listing_never_ranks_as_new(
    session, fetch_settings, http_client, pacer, feed_server, tmp_path
):
    items = [
        ("2604.30001", "new", "Brand new"),
        ("2202.06515v3", "cross", "First submitted in February 2022"),
        ("2604.20002v1", "cross", "Submitted earlier this month"),
    ]
    listing = tmp_path / "listing.xml"
    listing.write_text(
        _LISTING.format(items="".join(_ITEM.format(id=i, kind=k, title=t) for i, k, t in items))
    )
    feed_server.route(RSS_PATH + "cs.AI", serve_file(listing))
    feed_server.route(API_PATH, status(503))  # no first-version dates today
    with freeze_time(NOW):
        run_fetch(session, fetch_settings, "arxiv", http=http_client, pacer=pacer)
        stored = {p.arxiv_id: p.published_at for p in session.scalars(sa.select(Paper))}
        assert stored == {
            "2604.30001": datetime(2026, 4, 28, 4, tzinfo=UTC),
            "2202.06515": None,
            "2604.20002": None,
        }
        for window in trending.WINDOWS:
            params = trending.TrendParams.from_settings(fetch_settings, window)
            run = trending.score_papers(session, params, keep_runs=5)
            evidence = {p.paper.arxiv_id: p.evidence for p in trending.ranked_papers(session, run.run_id)}
            # The 2022 paper is years past the horizon, and this month's cross-list is told as a bound.
            assert evidence == {
                "2604.30001": "no signals yet · 2 hours old",
                "2604.20002": "no signals yet · up to 27 days old",
            }


@pytest.mark.parametrize(
    ("arxiv_id", "published", "kept"),
    [
        ("2604.30001", datetime(2026, 4, 28, 4, tzinfo=UTC), datetime(2026, 4, 28, 4, tzinfo=UTC)),
        ("2202.06515", datetime(2026, 4, 28, 4, tzinfo=UTC), None),  # a listing's date, years later
        (
            "2603.00001",
            datetime(2026, 4, 1, 1, tzinfo=UTC),
            datetime(2026, 4, 1, tzinfo=UTC),
        ),  # 21:00 in New York
        ("2603.00001", datetime(2026, 4, 2, 1, tzinfo=UTC), None),
        (
            "2603.00001",
            datetime(2026, 2, 27, tzinfo=UTC),
            datetime(2026, 2, 27, tzinfo=UTC),
        ),  # submitted before
        (
            "2512.00001",
            datetime(2026, 1, 1, 3, tzinfo=UTC),
            datetime(2026, 1, 1, tzinfo=UTC),
        ),  # over the new year
        ("hep-th/9901001", datetime(2026, 4, 28, tzinfo=UTC), None),
    ],
)
def test_whatever_a_source_says_a_paper_is_never_younger_than_its_id(session, arxiv_id, published, kept):
    record = PaperRecord(arxiv_id, 1, "A paper", published_at=published, from_arxiv=False)
    upsert_papers(session, [record], now=NOW)
    assert session.scalar(sa.select(Paper.published_at).where(Paper.arxiv_id == arxiv_id)) == kept


@pytest.mark.parametrize(
    ("arxiv_id", "born", "words"),
    [
        ("2604.30001", datetime(2026, 4, 1, tzinfo=UTC), "up to 27 days old"),  # this month: maybe today
        ("2603.00001", datetime(2026, 3, 1, tzinfo=UTC), "27 to 58 days old"),  # out by 1 April
        ("2202.06515", datetime(2022, 2, 1, tzinfo=UTC), "1519 to 1547 days old"),
    ],
)
def test_an_unknown_age_is_told_between_its_ids_month_bounds(arxiv_id, born, words):
    age_hours = (NOW - born).total_seconds() / 3600
    assert format_unknown_age(age_hours, arxiv_id) == words
    assert (
        build_evidence([], age_hours, 24, age_known=False, arxiv_id=arxiv_id) == f"no signals yet · {words}"
    )
