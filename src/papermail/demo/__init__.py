"""The offline demo: a bundled sample of real papers, re-dated to now, with a fortnight of signals.

``sample.json.gz`` is built by ``scripts/make-demo-sample`` from recorded real arXiv and Hugging
Face responses (that script's header says where, and exactly what is real and what is made up). It
loads only into a database without papers (failed fetches leave none, so an offline start does
not stand in its way), and what it loaded is written down in the audit
log (the paper ids and the scoring run), so ``remove_demo`` deletes exactly that: papers a real
fetch has seen since stay, without the sample's history. Its signal snapshots carry the source
``demo``, so they are never mistaken for Hugging Face's.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail import trending
from papermail.config import Settings
from papermail.db import audit
from papermail.db.bookkeeping import AuditLog
from papermail.db.models import Digest, Paper, ScoringRun, SignalSnapshot, TrendScore
from papermail.sources.ingest import observation_minute, upsert_papers
from papermail.sources.records import PaperRecord

SAMPLE_PATH = Path(__file__).with_name("sample.json.gz")
SNAPSHOT_EVERY_HOURS = 6
DEMO_SOURCE = "demo"
LOAD_ACTION, REMOVE_ACTION = "demo.load", "demo.remove"


class DemoRefused(Exception):
    """The database holds real data: the demo would mix made-up history into it."""


@dataclass(frozen=True)
class LoadResult:
    """What ``load_demo`` did; ``already`` when the sample was loaded before (nothing done)."""

    papers: int
    snapshots: int
    run_id: int | None
    already: bool = False


@dataclass(frozen=True)
class RemoveResult:
    """What ``remove_demo`` deleted; ``kept`` papers were seen by a real fetch since."""

    papers: int = 0
    snapshots: int = 0
    kept: list[str] = field(default_factory=list)
    loaded: bool = True


def read_sample(path: Path = SAMPLE_PATH) -> dict[str, Any]:
    """The bundled sample, as JSON."""
    return json.loads(gzip.decompress(path.read_bytes()))


def current_load(session: Session) -> AuditLog | None:
    """The audit row of the demo load in effect, or None (never loaded, or removed since)."""
    latest = session.scalar(
        sa.select(AuditLog)
        .where(AuditLog.action.in_((LOAD_ACTION, REMOVE_ACTION)))
        .order_by(AuditLog.id.desc())
        .limit(1)
    )
    return latest if latest is not None and latest.action == LOAD_ACTION else None


def real_data(session: Session) -> str | None:
    """What makes this database not empty (papers, whatever the fetch log says), or None."""
    papers = session.scalar(sa.select(sa.func.count()).select_from(Paper)) or 0
    if papers:
        return f"it already holds {papers:,} {'paper' if papers == 1 else 'papers'}"
    return None


def load_demo(session: Session, settings: Settings, *, now: datetime, actor: str) -> LoadResult:
    """Load the sample, re-dated so its newest papers are hours old, and rank it."""
    loaded = current_load(session)
    if loaded is not None:
        run_ids = loaded.details.get("run_ids") or [None]
        return LoadResult(len(loaded.details["paper_ids"]), 0, run_ids[-1], already=True)
    reason = real_data(session)
    if reason is not None:
        raise DemoRefused(f"the demo loads only into a database with no papers, and {reason}")
    sample = read_sample()
    records = [_record(paper, now) for paper in sample["papers"]]
    # The sample is re-dated to now on purpose, though its real ids name older months.
    paper_ids = upsert_papers(session, records, now=now, bound_dates=False).paper_ids
    rows = [
        {
            "paper_id": paper_ids[arxiv_id],
            "source": DEMO_SOURCE,
            "metric": metric,
            "value": int(value),
            "observed_at": observation_minute(now - timedelta(hours=hours_ago)),
        }
        for arxiv_id, metrics in sample["signals"].items()
        for metric, history in metrics.items()
        for hours_ago, value in history
    ]
    if rows:
        session.execute(sa.insert(SignalSnapshot), rows)
    run_ids = _rank(session, settings, now)
    audit.record(
        session,
        actor,
        LOAD_ACTION,
        paper_ids=sorted(paper_ids.values()),
        run_ids=run_ids,
        loaded_at=now.isoformat(),
    )
    session.flush()
    return LoadResult(len(paper_ids), len(rows), run_ids[-1])


def _rank(session: Session, settings: Settings, as_of: datetime | None = None) -> list[int]:
    """Rank now, as beat's scoring would (a run per window); return the new runs' ids."""
    return [summary.run_id for summary in trending.score_windows(session, settings, as_of=as_of)]


def _record(paper: dict[str, Any], now: datetime) -> PaperRecord:
    published = now - timedelta(hours=paper["age_hours"])
    return PaperRecord(
        arxiv_id=paper["arxiv_id"],
        version=paper["version"],
        title=paper["title"],
        abstract=paper["abstract"],
        authors=tuple(paper["authors"]),
        primary_category=paper["primary_category"],
        categories=tuple(paper["categories"]),
        published_at=published,
        updated_at=published,
        github_url=paper["github_url"],
        on_huggingface=paper["on_huggingface"],
        from_arxiv=paper["from_arxiv"],
    )


def remove_demo(session: Session, settings: Settings, *, actor: str) -> RemoveResult:
    """Delete what the demo load wrote: its papers (unless a real fetch saw them since), its history."""
    loaded = current_load(session)
    if loaded is None:
        return RemoveResult(loaded=False)
    ids = list(loaded.details["paper_ids"])
    loaded_at = datetime.fromisoformat(loaded.details["loaded_at"])
    snapshots = session.execute(
        sa.delete(SignalSnapshot).where(
            SignalSnapshot.source == DEMO_SOURCE, SignalSnapshot.paper_id.in_(ids)
        )
    ).rowcount
    seen_since = dict(
        session.execute(
            sa.select(Paper.id, Paper.arxiv_id).where(Paper.id.in_(ids), Paper.last_seen_at > loaded_at)
        ).all()
    )
    doomed = [paper_id for paper_id in ids if paper_id not in seen_since]
    session.execute(sa.delete(TrendScore).where(TrendScore.paper_id.in_(doomed)))
    deleted = session.execute(sa.delete(Paper).where(Paper.id.in_(doomed))).rowcount
    _forget_runs(session, loaded.details.get("run_ids") or [])
    audit.record(session, actor, REMOVE_ACTION, paper_ids=doomed, kept=sorted(seen_since.values()))
    session.flush()
    if seen_since or session.scalar(sa.select(sa.func.count()).select_from(Paper)):
        _rank(session, settings)
    return RemoveResult(deleted, snapshots, sorted(seen_since.values()))


def _forget_runs(session: Session, demo_run_ids: list[int]) -> None:
    """Delete the demo's own rankings unless a digest pinned them; recount what later runs still hold."""
    pinned = set(session.scalars(sa.select(Digest.scoring_run_id).where(Digest.scoring_run_id.is_not(None))))
    unpinned = [run_id for run_id in demo_run_ids if run_id not in pinned]
    session.execute(sa.delete(TrendScore).where(TrendScore.run_id.in_(unpinned)))
    session.execute(sa.delete(ScoringRun).where(ScoringRun.id.in_(unpinned)))
    remaining = (
        sa.select(sa.func.count())
        .select_from(TrendScore)
        .where(TrendScore.run_id == ScoringRun.id)
        .scalar_subquery()
    )
    session.execute(sa.update(ScoringRun).values(paper_count=remaining))
