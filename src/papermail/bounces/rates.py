"""Bounce and complaint rates per period, and the thresholds doctor holds them to.

A verdict counts towards the period of the delivery it is about: the one its VERP token or
returned Message-ID names, or else the subscriber's last digest sent before the report came. A
delivery refused with a 5xx at RCPT is a hard bounce too. The rate is over the deliveries handed
to the relay in the period (sent, or refused).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail import clock
from papermail.db.models import BounceEvent, BounceVerdict, Delivery, DeliveryStatus, Digest

# Doctor's thresholds on the last period: relays suspend senders around 5 % bounces, and Gmail
# wants complaints under 0.1 %, never at 0.3 %.
HARD_WARN, HARD_FAIL = 0.02, 0.05
COMPLAINT_WARN, COMPLAINT_FAIL = 0.001, 0.003
SENDER_LOOKBACK = timedelta(days=7)
PERIODS_SHOWN = 4


@dataclass(frozen=True)
class PeriodRates:
    """One period's deliveries handed to the relay and the reports about them."""

    period_key: str
    handed_over: int
    hard: int
    soft: int
    complaints: int

    @property
    def hard_rate(self) -> float | None:
        return self.hard / self.handed_over if self.handed_over else None

    @property
    def complaint_rate(self) -> float | None:
        return self.complaints / self.handed_over if self.handed_over else None

    def as_dict(self) -> dict:
        return {
            "period_key": self.period_key,
            "handed_over": self.handed_over,
            "hard": self.hard,
            "soft": self.soft,
            "complaints": self.complaints,
            "hard_rate": self.hard_rate,
            "complaint_rate": self.complaint_rate,
        }


def recent_period_keys(session: Session, count: int = PERIODS_SHOWN) -> list[str]:
    """The latest planned periods, newest first."""
    query = sa.select(Digest.period_key).order_by(Digest.created_at.desc(), Digest.id.desc()).limit(count)
    return list(session.scalars(query))


def period_rates(session: Session, period_keys: list[str]) -> list[PeriodRates]:
    """Each period's rates, in the order given."""
    if not period_keys:
        return []
    refused = sa.and_(Delivery.status == DeliveryStatus.FAILED, Delivery.last_smtp_code.between(500, 599))
    rows = session.execute(
        sa.select(Delivery.id, Delivery.period_key, Delivery.subscriber_id, Delivery.sent_at, refused).where(
            Delivery.period_key.in_(period_keys),
            sa.or_(Delivery.status == DeliveryStatus.SENT, refused),
        )
    ).all()
    handed_over: dict[str, int] = defaultdict(int)
    verdicts: dict[int, set[BounceVerdict]] = defaultdict(set)
    period_of = {}
    for delivery_id, period_key, _subscriber_id, _sent_at, was_refused in rows:
        handed_over[period_key] += 1
        period_of[delivery_id] = period_key
        if was_refused:
            verdicts[delivery_id].add(BounceVerdict.HARD)
    for delivery_id, verdict in _attributed_verdicts(session, rows):
        if delivery_id in period_of:
            verdicts[delivery_id].add(verdict)
    counts: dict[str, dict[BounceVerdict, int]] = defaultdict(lambda: defaultdict(int))
    for delivery_id, found in verdicts.items():
        for verdict in found:
            counts[period_of[delivery_id]][verdict] += 1
    return [
        PeriodRates(
            key,
            handed_over[key],
            counts[key][BounceVerdict.HARD],
            counts[key][BounceVerdict.SOFT],
            counts[key][BounceVerdict.COMPLAINT],
        )
        for key in period_keys
    ]


def _attributed_verdicts(session: Session, deliveries: list) -> list[tuple[int, BounceVerdict]]:
    """(delivery id, verdict) for every acting verdict about these deliveries."""
    counted = (BounceVerdict.HARD, BounceVerdict.SOFT, BounceVerdict.COMPLAINT)
    ids = [row[0] for row in deliveries]
    linked = session.execute(
        sa.select(BounceEvent.delivery_id, BounceEvent.verdict).where(
            BounceEvent.delivery_id.in_(ids), BounceEvent.verdict.in_(counted)
        )
    ).all()
    sent_by_subscriber: dict[int, list[tuple]] = defaultdict(list)
    for delivery_id, _period, subscriber_id, sent_at, _refused in deliveries:
        if sent_at is not None:
            sent_by_subscriber[subscriber_id].append((sent_at, delivery_id))
    for sent in sent_by_subscriber.values():
        sent.sort()
    earliest = min((s[0][0] for s in sent_by_subscriber.values()), default=None)
    if earliest is None:
        return [tuple(row) for row in linked]
    unlinked = session.execute(
        sa.select(BounceEvent.subscriber_id, BounceEvent.recorded_at, BounceEvent.verdict).where(
            BounceEvent.delivery_id.is_(None),
            BounceEvent.subscriber_id.in_(list(sent_by_subscriber)),
            BounceEvent.recorded_at >= earliest,
            BounceEvent.verdict.in_(counted),
        )
    ).all()
    found = [tuple(row) for row in linked]
    for subscriber_id, recorded_at, verdict in unlinked:
        sent = sent_by_subscriber[subscriber_id]
        position = bisect.bisect_right(sent, (recorded_at, float("inf"))) - 1
        if position >= 0:  # the subscriber's last digest sent before the report
            found.append((sent[position][1], verdict))
    return found


def _level(rate: float | None, warn: float, fail: float) -> str:
    if rate is None or rate <= warn:
        return "ok"
    return "fail" if rate > fail else "warn"


def bounce_checks(session: Session) -> list[tuple[str, str, str]]:
    """Doctor's checks: the last period's hard-bounce and complaint rates, and recent sender faults."""
    keys = recent_period_keys(session, 1)
    checks: list[tuple[str, str, str]] = []
    if keys:
        (rates,) = period_rates(session, keys)
        for name, rate, count, warn, fail in (
            ("hard bounces", rates.hard_rate, rates.hard, HARD_WARN, HARD_FAIL),
            ("complaints", rates.complaint_rate, rates.complaints, COMPLAINT_WARN, COMPLAINT_FAIL),
        ):
            shown = "n/a" if rate is None else f"{rate:.2%}"
            detail = (
                f"{shown} in {rates.period_key} ({count} of {rates.handed_over} handed to the relay; "
                f"warn above {warn:.1%}, fail above {fail:.1%})"
            )
            checks.append((name, _level(rate, warn, fail), detail))
    sender = _sender_check(session)
    if keys or sender[1] != "ok":  # before the first digest there is nothing to say
        checks.append(sender)
    return checks


def _sender_check(session: Session) -> tuple[str, str, str]:
    """Recent ``sender`` verdicts by reporting MTA: "your relay is being blocked"."""
    since = clock.now() - SENDER_LOOKBACK
    rows = session.execute(
        sa.select(BounceEvent.reporting_mta, sa.func.count(), sa.func.max(BounceEvent.diagnostic))
        .where(BounceEvent.verdict == BounceVerdict.SENDER, BounceEvent.recorded_at >= since)
        .group_by(BounceEvent.reporting_mta)
        .order_by(sa.func.count().desc())
        .limit(5)
    ).all()
    if not rows:
        return ("sender verdicts", "ok", "no report blamed the sender or the relay in the last 7 days")
    listed = "; ".join(
        f"{mta or 'unknown MTA'}: {count} ({(diagnostic or '')[:80]})" for mta, count, diagnostic in rows
    )
    return ("sender verdicts", "warn", f"reports blaming the sender or relay in the last 7 days: {listed}")
