"""Rows for digest tests and the render benchmark: papers with real titles and abstracts, runs, people.

The texts come from the recorded Hugging Face trending page in the shared fixtures (about 100 real
titles and abstracts), so sizes and word counts are realistic. Rows are inserted directly; the
trending and send stages that normally write them land separately.
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import TypeVar

from sqlalchemy.orm import Session

from papermail import clock
from papermail.db.models import (
    Delivery,
    DeliveryStatus,
    Digest,
    Frequency,
    Paper,
    ScoringRun,
    Subscriber,
    SubscriberStatus,
    TrendScore,
)

T = TypeVar("T")

AUTHORS = [
    "Ada Lovelace",
    "Grace Hopper",
    "Alan Turing",
    "Rémy Ollivier",
    "Przemysław Kowalski",
    "Chen Wei",
    "Ngozi Okonkwo",
]
VARIED_CATEGORIES = [
    ["cs.LG"],
    ["cs.CL", "cs.AI"],
    ["cs.CV"],
    ["cs.RO", "cs.LG"],
    ["stat.ML", "cs.LG"],
    ["cs.AI"],
]
EVIDENCE = "+{up} upvotes / 24h · {stars}★ (+{new} / 24h) · {age} days old"


def seed_texts(shared_fixtures: Path) -> list[tuple[str, str]]:
    """(title, abstract) pairs from the recorded trending page: a title line, then its abstract."""
    lines = [
        line.strip() for line in (shared_fixtures / "seed" / "trending-page.txt").read_text().splitlines()
    ]
    lines = [line for line in lines if line]
    return [
        (title, abstract) for title, abstract in itertools.pairwise(lines) if len(abstract) > 300 > len(title)
    ]


@dataclass
class World:
    """Builds digest rows in one session; ids and arXiv ids are unique within a test."""

    session: Session
    texts: list[tuple[str, str]]
    _serial: itertools.count = field(default_factory=lambda: itertools.count(1))

    def paper(
        self,
        *,
        title: str | None = None,
        abstract: str | None = None,
        categories: Sequence[str] = ("cs.LG",),
        authors: Sequence[str] | None = None,
        github_url: str | None = None,
        on_huggingface: bool = False,
    ) -> Paper:
        n = next(self._serial)
        seed_title, seed_abstract = self.texts[n % len(self.texts)]
        now = clock.now()
        paper = Paper(
            arxiv_id=f"2611.{n:05d}",
            title=seed_title if title is None else title,
            abstract=seed_abstract if abstract is None else abstract,
            authors=list(AUTHORS[: 1 + n % len(AUTHORS)] if authors is None else authors),
            primary_category=categories[0] if categories else None,
            categories=list(categories),
            github_url=github_url,
            on_huggingface=on_huggingface,
            first_seen_at=now,
            last_seen_at=now,
        )
        return self._save(paper)

    def papers(self, count: int, **kwargs) -> list[Paper]:
        return [self.paper(**kwargs) for _ in range(count)]

    def varied_papers(self, count: int) -> list[Paper]:
        """Papers like a real week's: mixed categories and cross-lists, some on HF, some with code."""
        return [
            self.paper(
                categories=VARIED_CATEGORIES[n % len(VARIED_CATEGORIES)],
                on_huggingface=n % 4 != 3,
                github_url=f"https://github.com/lab-{n}/project-{n}" if n % 2 == 0 else None,
            )
            for n in range(count)
        ]

    def _save(self, row: T) -> T:
        self.session.add(row)
        self.session.flush()
        return row

    def run(self, ranked: Sequence[Paper], evidence: Sequence[str] | None = None) -> ScoringRun:
        """A finished scoring run ranking ``ranked`` in order (rank 1 first)."""
        now = clock.now()
        run = self._save(ScoringRun(as_of=now, finished_at=now, paper_count=len(ranked)))
        self.session.add_all(
            TrendScore(
                run_id=run.id,
                paper_id=paper.id,
                rank=rank,
                score=1000.0 - rank,
                evidence=evidence[rank - 1]
                if evidence
                else EVIDENCE.format(up=200 - rank, stars=310 + rank, new=55, age=1 + rank % 6),
            )
            for rank, paper in enumerate(ranked, start=1)
        )
        self.session.flush()
        return run

    def subscriber(
        self,
        email: str | None = None,
        *,
        topics: Sequence[str] = ("cs.LG",),
        keywords: Sequence[str] = (),
        frequency: Frequency = Frequency.WEEKLY,
        timezone: str = "UTC",
    ) -> Subscriber:
        return self._save(
            Subscriber(
                email=email or f"reader{next(self._serial)}@example.org",
                status=SubscriberStatus.ACTIVE,
                topics=list(topics),
                keywords=list(keywords),
                frequency=frequency,
                timezone=timezone,
                created_at=clock.now(),
                confirmed_at=clock.now(),
            )
        )

    def digest(self, period_key: str, run: ScoringRun | None) -> Digest:
        return self._save(
            Digest(period_key=period_key, scoring_run_id=run.id if run else None, created_at=clock.now())
        )

    def delivery(
        self,
        subscriber: Subscriber,
        digest: Digest,
        papers: Sequence[Paper | int],
        status: DeliveryStatus = DeliveryStatus.PENDING,
    ) -> Delivery:
        now = clock.now()
        return self._save(
            Delivery(
                digest_id=digest.id,
                subscriber_id=subscriber.id,
                period_key=digest.period_key,
                status=status,
                paper_ids=[p if isinstance(p, int) else p.id for p in papers],
                skip_reason=None if papers else "no new papers",
                scheduled_for=now,
                planned_at=now,
                updated_at=now,
            )
        )


def parse_message(raw: bytes) -> EmailMessage:
    """Parse built bytes back with the stdlib, after checking the wire format (CRLF, line length)."""
    assert b"\r\n" in raw
    assert b"\n" not in raw.replace(b"\r\n", b""), "bare LF"
    assert b"\r" not in raw.replace(b"\r\n", b""), "bare CR"
    longest = max(len(line) for line in raw.split(b"\r\n"))
    assert longest <= 998, f"a line of {longest} octets"
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert not parsed.defects, parsed.defects
    for part in parsed.walk():
        assert not part.defects, part.defects
    return parsed


def part_text(message: EmailMessage, subtype: str) -> str:
    """The decoded text of the text/``subtype`` part, with line endings as written (LF)."""
    body = message.get_body((subtype,))
    assert body is not None, f"no text/{subtype} part"
    return body.get_content().replace("\r\n", "\n")


def same_html(sent: str, written: str) -> bool:
    """Equal as HTML: characters may be sent as references, and long lines broken between tags
    (a line break added) or at a space (a space replaced)."""
    unfolded = sent.rstrip("\n").replace(">\n<", "><").replace("\n", " ")
    return html.unescape(unfolded) == html.unescape(written.rstrip("\n").replace("\n", " "))
