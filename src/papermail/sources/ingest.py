"""Storing what a fetch found, in bulk: paper upserts and signal snapshots (runs: ``fetch_runs``).

One paper per arXiv id whatever the source. Records merge by these rules:
- a newer version replaces the metadata; an older one never does;
- arXiv's own metadata (RSS, API) replaces Hugging Face's copy; Hugging Face only fills gaps and adds
  its flag and GitHub link;
- ``published_at`` keeps the earliest known first-version date, ``updated_at`` the latest; a date
  after the end of the arXiv id's month cannot be the first version's and is not kept.
A paper counts as *new* only when it is inserted from a ``new`` announcement (or first seen on the
API or Hugging Face); rows inserted for a replacement or cross-list count as *updated*.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail.arxiv_ids import bounded_first_version
from papermail.db.inserts import insert_ignoring_conflicts
from papermail.db.models import Paper, SignalSnapshot
from papermail.sources.records import PaperRecord, SignalRecord

# Bounded IN lists: well under SQLite's and PostgreSQL's bind-parameter limits.
CHUNK_SIZE = 500
# The metadata columns a record can change (first/last seen are bookkeeping).
PAPER_FIELDS = (
    "version",
    "title",
    "abstract",
    "authors",
    "primary_category",
    "categories",
    "published_at",
    "updated_at",
    "github_url",
    "on_huggingface",
)
_TEXT_FIELDS = ("title", "abstract", "authors", "primary_category", "categories")


def _chunks(items: Sequence[Any], size: int = CHUNK_SIZE) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- papers ---------------------------------------------------------------------------------------


@dataclass
class _State:
    """A paper's merged values while a batch is applied; ``from_arxiv`` says whose metadata it is."""

    values: dict[str, Any]
    from_arxiv: bool
    announced_new: bool = False

    @classmethod
    def of_record(cls, record: PaperRecord, *, bound_dates: bool = True) -> _State:
        values = {name: getattr(record, name) for name in PAPER_FIELDS}
        values["authors"], values["categories"] = list(record.authors), list(record.categories)
        if bound_dates:
            # Whatever the source says, a paper is never younger than its id: it was out by the
            # id's month's end. A later date belongs to some other event; the API lookup has it.
            values["published_at"] = bounded_first_version(record.arxiv_id, record.published_at)
        return cls(values, record.from_arxiv, record.announced_new)

    @property
    def complete(self) -> bool:
        """Has arXiv's own metadata (Hugging Face has no categories) and a first-version date."""
        return bool(self.values["categories"]) and self.values["published_at"] is not None


def _merge(current: _State, incoming: _State) -> _State:
    """``current`` updated by ``incoming`` (a record, or a batch's merged records) by the rules above."""
    now, new = current.values, incoming.values
    version, new_version = now["version"] or 0, new["version"] or 0
    # arXiv's text beats Hugging Face's copy, whatever the order; between two of the same kind,
    # the newer (or re-sent) version wins.
    prefer = incoming.from_arxiv if incoming.from_arxiv != current.from_arxiv else new_version >= version
    merged = dict(now)
    for name in _TEXT_FIELDS:
        if new[name] and (prefer or not now[name]):
            merged[name] = new[name]
    merged["version"] = max(version, new_version) or None
    merged["published_at"] = _earliest(now["published_at"], new["published_at"])
    merged["updated_at"] = _latest(now["updated_at"], new["updated_at"])
    merged["github_url"] = new["github_url"] or now["github_url"]
    merged["on_huggingface"] = now["on_huggingface"] or new["on_huggingface"]
    return _State(
        merged,
        current.from_arxiv or incoming.from_arxiv,
        current.announced_new or incoming.announced_new,
    )


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min(a, b) if a and b else a or b


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max(a, b) if a and b else a or b


@dataclass
class UpsertResult:
    """What an upsert did: which papers are new or updated, every row id, which lack arXiv metadata."""

    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    paper_ids: dict[str, int] = field(default_factory=dict)
    incomplete: list[str] = field(default_factory=list)  # to look up on the arXiv API


def upsert_papers(
    session: Session, records: Iterable[PaperRecord], *, now: datetime, bound_dates: bool = True
) -> UpsertResult:
    """Insert new papers and update changed ones, in a few statements for the whole batch.

    ``bound_dates=False`` keeps dates later than the id's month: only for the demo, re-dated on purpose.
    """
    batch: dict[str, _State] = {}
    for record in records:
        state, incoming = batch.get(record.arxiv_id), _State.of_record(record, bound_dates=bound_dates)
        batch[record.arxiv_id] = _merge(state, incoming) if state else incoming
    result = UpsertResult()
    if not batch:
        return result
    existing = _load(session, list(batch))
    inserted = _insert(session, {k: v for k, v in batch.items() if k not in existing}, now)
    # Another fetch (of the other source) may have inserted some of them since we looked.
    raced = [arxiv_id for arxiv_id in batch if arxiv_id not in existing and arxiv_id not in inserted]
    existing.update(_load(session, raced))

    changes = []
    for arxiv_id, state in batch.items():
        if arxiv_id in inserted:
            result.paper_ids[arxiv_id] = inserted[arxiv_id]
            (result.new if state.announced_new else result.updated).append(arxiv_id)
            if not state.complete:
                result.incomplete.append(arxiv_id)
            continue
        row_id, stored = existing[arxiv_id]
        result.paper_ids[arxiv_id] = row_id
        merged = _merge(stored, state)
        diff = {name: value for name, value in merged.values.items() if value != stored.values[name]}
        if diff:
            changes.append({"id": row_id, **diff})
            result.updated.append(arxiv_id)
        if not merged.complete:
            result.incomplete.append(arxiv_id)
    if changes:
        session.execute(sa.update(Paper), changes)
    seen = [row_id for arxiv_id, (row_id, _) in existing.items() if arxiv_id in batch]
    for chunk in _chunks(seen):
        session.execute(sa.update(Paper).where(Paper.id.in_(chunk)).values(last_seen_at=now))
    return result


def _load(session: Session, arxiv_ids: Sequence[str]) -> dict[str, tuple[int, _State]]:
    columns = [Paper.id, Paper.arxiv_id, *(getattr(Paper, name) for name in PAPER_FIELDS)]
    found: dict[str, tuple[int, _State]] = {}
    for chunk in _chunks(arxiv_ids):
        for row in session.execute(sa.select(*columns).where(Paper.arxiv_id.in_(chunk))):
            values = {name: getattr(row, name) for name in PAPER_FIELDS}
            # Only arXiv metadata has categories: that is how a stored row tells whose it is.
            found[row.arxiv_id] = (row.id, _State(values, from_arxiv=bool(values["categories"])))
    return found


def _insert(session: Session, states: dict[str, _State], now: datetime) -> dict[str, int]:
    if not states:
        return {}
    rows = [
        {"arxiv_id": arxiv_id, **state.values, "first_seen_at": now, "last_seen_at": now}
        for arxiv_id, state in states.items()
    ]
    for row in rows:
        row["version"] = row["version"] or 1
    statement = insert_ignoring_conflicts(session, Paper, ["arxiv_id"]).returning(Paper.arxiv_id, Paper.id)
    return dict(session.connection().execute(statement, rows).all())


def incomplete_papers(session: Session, *, seen_since: datetime, limit: int) -> list[str]:
    """Recently seen papers still without arXiv's metadata, most recent first.

    Those first seen on Hugging Face have no category yet, and replacements of papers we never
    saw have no first-version date. A lookup that failed (or an API index lagging behind the
    listings) is retried by later fetches until the paper is no longer being seen.
    """
    query = (
        sa.select(Paper.arxiv_id)
        .where(
            sa.or_(Paper.primary_category.is_(None), Paper.published_at.is_(None)),
            Paper.last_seen_at >= seen_since,
        )
        .order_by(Paper.last_seen_at.desc(), Paper.id)
        .limit(limit)
    )
    return list(session.scalars(query))


# -- signals --------------------------------------------------------------------------------------


def observation_minute(now: datetime) -> datetime:
    """Snapshots are stamped to the minute, so a repeated fetch within it adds nothing."""
    return now.replace(second=0, microsecond=0)


def paper_ids_of(session: Session, arxiv_ids: Iterable[str]) -> dict[str, int]:
    """The row id of each of ``arxiv_ids`` that is a paper we know."""
    found: dict[str, int] = {}
    for chunk in _chunks(sorted(set(arxiv_ids))):
        rows = session.execute(sa.select(Paper.arxiv_id, Paper.id).where(Paper.arxiv_id.in_(chunk)))
        found.update(dict(rows.all()))
    return found


def append_signals(
    session: Session,
    signals: Iterable[SignalRecord],
    paper_ids: dict[str, int],
    *,
    observed_at: datetime,
    source: str,
) -> int:
    """Append snapshots (ignoring ones already recorded this minute); return how many were added."""
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for signal in signals:
        paper_id = paper_ids.get(signal.arxiv_id)
        if paper_id is not None:
            rows[(paper_id, signal.metric)] = {
                "paper_id": paper_id,
                "source": source,
                "metric": signal.metric,
                "value": signal.value,
                "observed_at": observation_minute(observed_at),
            }
    if not rows:
        return 0
    statement = insert_ignoring_conflicts(
        session, SignalSnapshot, ["paper_id", "source", "metric", "observed_at"]
    ).returning(SignalSnapshot.id)
    return len(session.connection().execute(statement, list(rows.values())).all())
