"""Ingest benchmark: parse, normalise and store a large realistic feed, on SQLite and PostgreSQL.

    /work/main/.venv/bin/python benchmarks/ingest.py            # 3,000 entries, 3 repeats (~1-2 min)
    /work/main/.venv/bin/python benchmarks/ingest.py --quick    # 500 entries, 1 repeat (CI smoke)

The feed is built at run time from the recorded fixtures' shapes: the real arXiv RSS items
(``../shared/fixtures/arxiv-rss``) with fresh ids, a realistic mix of announce types, TeX names and
math, and a Hugging Face daily-papers list made from the recorded 2026 items. It reports entries/s
(medians) for parsing (feedparser / json), normalising (our records), and storing (bulk upsert, and
signal snapshots for Hugging Face) on a fresh database, then the second ingest of the unchanged
feed separately. The baseline, measured in the same run on a subset, is the naive store: one
SELECT and one INSERT or UPDATE per entry through the ORM. Last, cProfile says where the time goes.

The 14-day Hugging Face refresh is measured too: 14 daily pages of 100 known papers (1,400) whose
counters moved, each page stored in its own transaction as the fetch does (target: under a second
on both databases), against the same 1,400 stored as one batch.

PostgreSQL: a database of its own is created on 127.0.0.1:5432 (user postgres, trust auth) and
dropped at the end.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from pathlib import Path

import psycopg
import sqlalchemy as sa
from sqlalchemy.orm import Session

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from papermail import clock  # noqa: E402
from papermail.config import load_settings  # noqa: E402
from papermail.db import get_engine, migrate  # noqa: E402
from papermail.db.models import Paper  # noqa: E402
from papermail.sources.arxiv_rss import rss_records  # noqa: E402
from papermail.sources.feeds import read_feed  # noqa: E402
from papermail.sources.huggingface import daily_papers_records  # noqa: E402
from papermail.sources.ingest import append_signals, upsert_papers  # noqa: E402
from papermail.sources.records import PaperRecord  # noqa: E402

PG_ADMIN = os.environ.get("PAPERMAIL_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BASELINE_ENTRIES = 500
REFRESH_DAYS, REFRESH_PAGE = 14, 100  # the 14-day refresh: a page of 100 papers a day
REFRESH_TARGET_SECONDS = 1.0


def fixtures_dir() -> Path:
    for path in (REPO.parent / "shared" / "fixtures", Path("/work/shared/fixtures")):
        if path.is_dir():
            return path
    raise SystemExit("shared fixtures not found (../shared/fixtures)")


# -- building the feeds ---------------------------------------------------------------------------

_ITEM = re.compile(r"<item>.*?</item>", re.DOTALL)
_ID = re.compile(r"\d{4}\.\d{5}")


def build_rss(fixtures: Path, entries: int) -> bytes:
    """An arXiv listing of ``entries`` items in the current format, from the recorded items."""
    sources = [(fixtures / "arxiv-rss" / f"arxiv_cs_{c}.xml").read_text() for c in ("ai", "cl", "lg")]
    templates = [item for text in sources for item in _ITEM.findall(text)]
    head, tail = sources[0].split("<item>", 1)[0], "\n  </channel>\n</rss>\n"
    items = []
    for i in range(entries):
        item = _ID.sub(f"2611.{10000 + i:05d}", templates[i % len(templates)])
        if i % 10 == 3:  # about a tenth are replacements, a twentieth cross-lists, as on arXiv
            item = item.replace("v1 Announce Type: new", "v2 Announce Type: replace")
            item = item.replace(">new<", ">replace<").replace("v1</guid>", "v2</guid>")
        elif i % 20 == 7:
            item = item.replace("Announce Type: new", "Announce Type: cross").replace(">new<", ">cross<")
        if i % 5 == 0:  # TeX names and math to exercise the normaliser
            item = item.replace("</dc:creator>", r", R\'emy Przemys{\l}aw (INRIA, Paris)</dc:creator>")
            item = item.replace("Abstract: ", "Abstract: For $x&lt;y$ in $O(n \\log n)$ time, ", 1)
        items.append(item)
    return (head + "".join(items) + tail).encode()


def build_hf(fixtures: Path, entries: int, *, first_id: int = 60000, votes_later: int = 0) -> bytes:
    """A daily-papers answer of ``entries`` items, cycling the recorded 2026 items with new ids."""
    recorded = json.loads((fixtures / "huggingface" / "hf_daily_papers.json").read_text())
    items = []
    for i in range(entries):
        item = json.loads(json.dumps(recorded[i % len(recorded)]))
        item["paper"]["id"] = f"2611.{first_id + i:05d}"
        item["paper"]["upvotes"] = i % 97 + votes_later
        items.append(item)
    return json.dumps(items).encode()


# -- databases ------------------------------------------------------------------------------------


@dataclass
class Backend:
    name: str
    fresh: Callable[[], str]  # a new, migrated, empty database URL


@contextmanager
def backends(tmp: Path) -> Iterator[list[Backend]]:
    """SQLite files copied from a migrated template; PostgreSQL databases from a template."""
    sqlite_template = tmp / "template.db"
    migrate.upgrade(_settings(tmp, f"sqlite:///{sqlite_template}"))
    get_engine(f"sqlite:///{sqlite_template}").dispose()

    def fresh_sqlite() -> str:
        path = tmp / f"{uuid.uuid4().hex}.db"
        shutil.copyfile(sqlite_template, path)
        return f"sqlite:///{path}"

    run = uuid.uuid4().hex[:8]
    created: list[str] = []
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:
        raise SystemExit(f"PostgreSQL is needed at {PG_ADMIN}: {exc}") from None
    template = f"pm_bench_{run}_template"
    admin.execute(f'CREATE DATABASE "{template}"')
    created.append(template)
    migrate.upgrade(_settings(tmp, _pg_url(template)))
    get_engine(_pg_url(template)).dispose()

    def fresh_pg() -> str:
        name = f"pm_bench_{run}_{len(created)}"
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        created.append(name)
        return _pg_url(name)

    try:
        yield [Backend("sqlite", fresh_sqlite), Backend("postgresql", fresh_pg)]
    finally:
        from papermail.db.session import dispose_engines

        dispose_engines()
        for name in reversed(created):
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _pg_url(name: str) -> str:
    url = sa.engine.make_url(PG_ADMIN).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False)


def _settings(tmp: Path, database_url: str):
    return load_settings(
        {
            "PAPERMAIL_DATA_DIR": str(tmp),
            "PAPERMAIL_SECRET_KEY": "bench",
            "PAPERMAIL_DATABASE_URL": database_url,
        }
    )


# -- the stages -----------------------------------------------------------------------------------


def timed(action: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def store(url: str, records: list[PaperRecord], signals=(), *, later: timedelta = timedelta(0)) -> None:
    """The real store: one bulk upsert (and snapshots) in one transaction."""
    with Session(get_engine(url)) as session:
        now = clock.now() + later
        result = upsert_papers(session, records, now=now)
        if signals:
            append_signals(session, signals, result.paper_ids, observed_at=now)
        session.commit()


def store_naively(url: str, records: list[PaperRecord]) -> None:
    """The baseline: what a first version would do, one query (or two) per entry."""
    with Session(get_engine(url)) as session:
        now = clock.now()
        for record in records:
            paper = session.scalar(sa.select(Paper).where(Paper.arxiv_id == record.arxiv_id))
            if paper is None:
                paper = Paper(arxiv_id=record.arxiv_id, first_seen_at=now, last_seen_at=now)
                session.add(paper)
            if (record.version or 1) >= (paper.version or 0):
                paper.version = record.version or 1
                paper.title, paper.abstract = record.title, record.abstract
                paper.authors, paper.categories = list(record.authors), list(record.categories)
                paper.primary_category, paper.published_at = record.primary_category, record.published_at
            paper.last_seen_at = now
            session.flush()
        session.commit()


def median_rate(entries: int, seconds: list[float]) -> float:
    return entries / statistics.median(seconds)


def measure(args, fixtures: Path, tmp: Path) -> None:
    rss, hf = build_rss(fixtures, args.entries), build_hf(fixtures, args.entries)
    print(
        f"feeds: arXiv RSS {args.entries} items ({len(rss) / 1e6:.1f} MB), "
        f"Hugging Face {args.entries} items ({len(hf) / 1e6:.1f} MB); median of {args.repeats}\n"
    )

    parse_s, normalise_s, hf_parse_s, hf_normalise_s = [], [], [], []
    for _ in range(args.repeats):
        seconds, (feed, _problems) = timed(partial(read_feed, rss, "bench"))
        parse_s.append(seconds)
        seconds, parsed = timed(partial(rss_records, feed, "bench"))
        normalise_s.append(seconds)
        seconds, items = timed(partial(json.loads, hf))
        hf_parse_s.append(seconds)
        seconds, hf_parsed = timed(partial(daily_papers_records, items, "bench"))
        hf_normalise_s.append(seconds)
    assert len(parsed.records) == args.entries and not parsed.problems, parsed.problems[:3]
    n = args.entries
    print(f"{'stage':<44}{'entries/s':>12}{'ms/entry':>10}")
    for label, seconds in (
        ("arXiv RSS: parse (feedparser)", parse_s),
        ("arXiv RSS: normalise (records)", normalise_s),
        ("Hugging Face: parse (json)", hf_parse_s),
        ("Hugging Face: normalise (records)", hf_normalise_s),
    ):
        rate = median_rate(n, seconds)
        print(f"{label:<44}{rate:>12,.0f}{1000 / rate:>10.3f}")

    with backends(tmp) as dbs:
        for db in dbs:
            print(f"\n{db.name}")
            first, second, hf_first, hf_second, naive = [], [], [], [], []
            subset = [
                replace(r, arxiv_id=r.arxiv_id.replace("2611.", "2612."))
                for r in parsed.records[:BASELINE_ENTRIES]
            ]
            for _ in range(args.repeats):
                url = db.fresh()
                first.append(timed(partial(store, url, parsed.records))[0])
                second.append(timed(partial(store, url, parsed.records))[0])
                hf_first.append(timed(partial(store, url, hf_parsed.records, hf_parsed.signals))[0])
                # A second HF fetch a minute later: papers unchanged, one new snapshot per metric.
                later = partial(store, url, hf_parsed.records, hf_parsed.signals, later=timedelta(minutes=1))
                hf_second.append(timed(later)[0])
                naive.append(timed(partial(store_naively, url, subset))[0])
            bulk = median_rate(n, first)
            baseline = median_rate(len(subset), naive)
            rows = (
                ("arXiv upsert, first ingest (bulk)", bulk),
                ("arXiv upsert, same feed again (nothing changed)", median_rate(n, second)),
                ("HF upsert + 3 signals/paper, first ingest", median_rate(n, hf_first)),
                ("HF again a minute later (new snapshots only)", median_rate(n, hf_second)),
                (f"baseline: one query per entry ({len(subset)} entries)", baseline),
            )
            for label, rate in rows:
                print(f"  {label:<52}{rate:>10,.0f} entries/s")
            print(f"  bulk vs baseline: {bulk / baseline:.1f}x")
            end_to_end = 1 / (1 / median_rate(n, parse_s) + 1 / median_rate(n, normalise_s) + 1 / bulk)
            print(f"  arXiv end to end (parse + normalise + upsert): {end_to_end:,.0f} entries/s")
        measure_refresh(args, fixtures, dbs)
        if not args.no_profile:
            profile(dbs, rss)


def refresh_pages(fixtures: Path, votes_later: int) -> list:
    """The refresh's 14 answers of 100 papers each (1,400 known papers), counters ``votes_later`` up."""
    pages = []
    for day in range(REFRESH_DAYS):
        first_id = 80000 + day * REFRESH_PAGE
        answer = build_hf(fixtures, REFRESH_PAGE, first_id=first_id, votes_later=votes_later)
        pages.append(daily_papers_records(json.loads(answer), "bench"))
    return pages


def measure_refresh(args, fixtures: Path, dbs: list[Backend]) -> None:
    """Storing the 14-day refresh: a transaction per page, as the fetch does, vs one batch."""
    papers = REFRESH_DAYS * REFRESH_PAGE
    print(f"\nthe 14-day Hugging Face refresh: {papers:,} known papers' counters, median of {args.repeats}")
    for db in dbs:
        url = db.fresh()
        for page in refresh_pages(fixtures, 0):  # the papers were fetched before
            store(url, page.records, page.signals)
        per_page, one_batch = [], []
        for n in range(1, args.repeats + 1):
            pages = refresh_pages(fixtures, 2 * n)
            minute = timedelta(minutes=2 * n)
            per_page.append(timed(lambda: [store(url, p.records, p.signals, later=minute) for p in pages])[0])  # noqa: B023
            records = [r for p in pages for r in p.records]
            signals = [s for p in pages for s in p.signals]
            later = timedelta(minutes=2 * n + 1)
            one_batch.append(timed(partial(store, url, records, signals, later=later))[0])
        refresh, batch = statistics.median(per_page), statistics.median(one_batch)
        met = "met" if refresh < REFRESH_TARGET_SECONDS else "MISSED"
        print(
            f"  {db.name:<11}{REFRESH_DAYS} pages, a transaction each: {refresh:.3f} s "
            f"(target < {REFRESH_TARGET_SECONDS:g} s: {met}); one batch of {papers:,}: {batch:.3f} s; "
            f"{refresh / batch:.2f}x"
        )


# -- where the time goes --------------------------------------------------------------------------

GROUPS = (
    ("feedparser (incl. its XML/SAX and date parsing)", ("feedparser", "sgmllib", "xml/", "pyexpat")),
    ("normalise (papermail.sources.normalise)", ("normalise.py",)),
    ("records (arxiv_rss.py, feeds.py)", ("arxiv_rss.py", "feeds.py", "records.py")),
    ("upsert (papermail.sources.ingest)", ("ingest.py",)),
    ("SQLAlchemy", ("sqlalchemy",)),
    ("database driver (psycopg / sqlite3)", ("psycopg", "sqlite3")),
)


def _group(filename: str) -> str:
    return next((label for label, marks in GROUPS if any(mark in filename for mark in marks)), "other")


def profile(dbs: list[Backend], rss: bytes) -> None:
    """Profile one ingest: parsing and normalising once, then storing on each backend."""
    profiler = cProfile.Profile()
    profiler.enable()
    feed, _ = read_feed(rss, "bench")
    records = rss_records(feed, "bench").records
    profiler.disable()
    report("parse + normalise", profiler)
    for db in dbs:
        url = db.fresh()
        profiler = cProfile.Profile()
        profiler.enable()
        store(url, records)
        profiler.disable()
        report(f"upsert on {db.name}", profiler)


def report(what: str, profiler: cProfile.Profile) -> None:
    """Self time grouped by area (a builtin's time goes to its caller), then the top functions."""
    stats = pstats.Stats(profiler, stream=io.StringIO())
    totals = dict.fromkeys([label for label, _ in GROUPS] + ["other"], 0.0)
    for (filename, _line, name), (_cc, _nc, tottime, _ct, callers) in stats.stats.items():
        if filename == "~" and callers and _group(name) == "other":
            # A regex, a str method...: charge whoever called it.
            for (caller_file, _l, _n), caller_stats in callers.items():
                totals[_group(caller_file)] += caller_stats[2]
        else:  # Python code by its file; the expat parser and sqlite3 by their names
            totals[_group(filename if filename != "~" else name)] += tottime
    total = sum(totals.values())
    print(f"\nprofile, {what} ({total:.2f} s under cProfile): self time by area")
    for label, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        if seconds >= 0.005:
            print(f"  {label:<52}{seconds:>7.2f} s {100 * seconds / total:>5.1f}%")
    top = io.StringIO()
    stats.stream = top
    stats.sort_stats("tottime").print_stats(6)
    print("  top functions by self time (ncalls, tottime, percall, cumtime, percall, function):")
    for line in [line for line in top.getvalue().splitlines() if re.match(r"\s+\d", line)][1:7]:
        print("   ", re.sub(r"/\S*site-packages/", "", line.strip())[:140])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="500 entries, 1 repeat")
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.entries, args.repeats = 500, 1
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        measure(args, fixtures_dir(), Path(tmp))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
