"""What parsing one response yields: normalised paper records, signal values, and problems."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TypeGuard

MAX_REASON_LENGTH = 1000
MAX_REF_LENGTH = 300


@dataclass(frozen=True, slots=True)
class PaperRecord:
    """One paper as a source described it, already normalised."""

    arxiv_id: str
    version: int | None  # None when the source doesn't say (Hugging Face)
    title: str
    abstract: str = ""
    authors: tuple[str, ...] = ()
    primary_category: str | None = None
    categories: tuple[str, ...] = ()  # primary first
    published_at: datetime | None = None  # first version; None when this source can't know it
    updated_at: datetime | None = None
    github_url: str | None = None
    on_huggingface: bool = False
    # False for replacements, cross-lists and abstract-only changes: they are not new papers.
    announced_new: bool = True
    # arXiv's own metadata (RSS, API) is authoritative; Hugging Face's copy only fills gaps.
    from_arxiv: bool = True


@dataclass(frozen=True, slots=True)
class SignalRecord:
    """One popularity metric of one paper at fetch time."""

    arxiv_id: str
    metric: str  # "upvotes", "comments", "github_stars"
    value: int


def is_count(value: object) -> TypeGuard[int]:
    """True for a count in a JSON answer: a non-negative integer (JSON's true and false are not)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True, slots=True)
class Problem:
    """Something the fetch-run log records, with the reason.

    ``entry``: one entry was rejected (counted as rejected). ``feed``: a whole feed or call failed
    (counted as an error). ``notice``: worth knowing but no failure, e.g. a paper the arXiv API
    doesn't know yet (its index lags the listings by hours), which the next fetch looks up again.
    """

    kind: str
    reason: str
    url: str | None = None
    entry_ref: str | None = None

    @classmethod
    def feed(cls, url: str | None, reason: str) -> Problem:
        return cls("feed", reason[:MAX_REASON_LENGTH], url)

    @classmethod
    def entry(cls, url: str | None, entry_ref: str | None, reason: str, *, kind: str = "entry") -> Problem:
        ref = entry_ref[:MAX_REF_LENGTH] if entry_ref else None
        return cls(kind, reason[:MAX_REASON_LENGTH], url, ref)

    @classmethod
    def notice(cls, url: str | None, entry_ref: str | None, reason: str) -> Problem:
        return cls.entry(url, entry_ref, reason, kind="notice")


@dataclass
class ParsedFeed:
    """Everything one response yielded; ``problems`` never stop the good records from being kept."""

    records: list[PaperRecord] = field(default_factory=list)
    signals: list[SignalRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    entries_seen: int = 0
    total_results: int | None = None  # the API's opensearch:totalResults, for paging

    @property
    def failed(self) -> bool:
        """True when the feed as a whole was an error (nothing in it can be trusted as "no news")."""
        return any(problem.kind == "feed" for problem in self.problems) and not self.records

    def extend(self, other: ParsedFeed) -> None:
        self.records.extend(other.records)
        self.signals.extend(other.signals)
        self.problems.extend(other.problems)
        self.entries_seen += other.entries_seen


@dataclass(kw_only=True)
class FetchTotals:
    """The counts a fetch run stores on its FetchRun row, and every summary of a run repeats."""

    new_papers: int = 0
    updated_papers: int = 0
    signals_added: int = 0
    rejected: int = 0
    errors: int = 0


def totals_of(source: object) -> dict[str, int]:
    """The :class:`FetchTotals` fields of a FetchRun row (or any object that has them)."""
    return {f.name: getattr(source, f.name) for f in fields(FetchTotals)}
