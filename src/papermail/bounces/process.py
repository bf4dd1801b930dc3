"""One pipeline for every report: read it, find whom it is about, apply the policy, record it.

Whom a report is about: each recipient it names (by address), and each subscriber whose signed
token it carries (a VERP return path, or the List-Unsubscribe link in the returned headers). A
report can act on nobody else. The returned message's Message-ID, and the tokens, link a verdict
to the delivery or confirmation it is about.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail import clock
from papermail.bounces.outcome import Action, ProcessResult, ProviderEvent, RecipientOutcome, ReportKind
from papermail.bounces.parse import Report, read_report
from papermail.bounces.policy import Suppressions, apply_verdict, strongest
from papermail.bounces.store import storable
from papermail.config import Settings, get_settings
from papermail.db.models import BounceEvent, BounceVerdict, Confirmation, Delivery, InboundMessage, Subscriber
from papermail.delivery.bounce_pause import pause_if_bouncing
from papermail.sending import verp
from papermail.sending.verp import VerpTarget, parse_verp_recipient
from papermail.subscribers.links import PATHS, BadToken, Purpose, read_token

_KIND_OF_VERDICT = {
    BounceVerdict.COMPLAINT: ReportKind.COMPLAINT,
    BounceVerdict.NONE: ReportKind.DELIVERY_REPORT,
}


@dataclass
class _Link:
    """A subscriber a report is about, and the row it links them to."""

    subscriber: Subscriber
    delivery_id: int | None = None
    confirmation_id: int | None = None


@dataclass
class _Source:
    """Where verdicts come from: their dedup keys and the stored message."""

    report_key: str | None = None
    inbound_message_id: int | None = None
    provider: str | None = None
    provider_event_id: str | None = None
    reporting_mta: str | None = None
    outcomes: list[RecipientOutcome] = field(default_factory=list)


class _Batch:
    """What reports processed together share: lookups read in bulk, one flush at the end.

    Each kind of lookup (subscribers by address, rows by returned Message-ID, verdicts already
    given, suppressions) is one query for the whole batch, not one per report: an import of a
    mailbox, or a burst of bounces from a bad list, costs a few queries per 500 reports.
    """

    def __init__(self, session: Session, settings: Settings) -> None:
        self.session, self.settings = session, settings
        self.suppressions = Suppressions(session)
        self.subscribers: dict[str, Subscriber | None] = {}
        self.rows_by_message_id: dict[str, _Link] = {}
        self.seen: set[tuple[str | None, str]] = set()
        self.events: list[tuple[RecipientOutcome, BounceEvent]] = []
        self.hard_bounced_deliveries: set[int] = set()

    def prefetch(self, reports: list[tuple[Report, str | None]]) -> None:
        """Read what these reports (with their report keys) will look up, one query per kind."""
        self._load_subscribers({r.address for report, _ in reports for r in report.recipients})
        self._load_rows({m for report, _ in reports for m in report.original_message_ids})
        keys = {key for _, key in reports if key}
        if keys:
            query = sa.select(BounceEvent.report_key, BounceEvent.address).where(
                BounceEvent.report_key.in_(keys)
            )
            self.seen.update((key, address) for key, address in self.session.execute(query))
        self.suppressions.load(s.email for s in self.subscribers.values() if s is not None)

    def subscriber(self, address: str) -> Subscriber | None:
        if address not in self.subscribers:
            self._load_subscribers({address})
        return self.subscribers[address]

    def _load_subscribers(self, addresses: set[str]) -> None:
        wanted = addresses - self.subscribers.keys()
        if not wanted:
            return
        self.subscribers.update(dict.fromkeys(wanted))
        query = sa.select(Subscriber).where(Subscriber.email.in_(wanted))
        self.subscribers.update((s.email, s) for s in self.session.scalars(query))

    def _load_rows(self, message_ids: set[str]) -> None:
        """Deliveries and confirmations whose Message-ID a report returns (through the unique index)."""
        if not message_ids:
            return
        for model in (Confirmation, Delivery):
            query = sa.select(model.message_id, model.id, model.subscriber_id).where(
                model.message_id.in_(message_ids)
            )
            for message_id, row_id, subscriber_id in self.session.execute(query):
                subscriber = self.session.get(Subscriber, subscriber_id)
                if subscriber is not None:
                    link = _Link(subscriber)
                    if model is Delivery:
                        link.delivery_id = row_id
                    else:
                        link.confirmation_id = row_id
                    self.rows_by_message_id[message_id] = link

    def finish(self) -> None:
        """Write the batch, then pause any send its hard bounces show to be bouncing."""
        self.session.flush()
        for outcome, event in self.events:
            outcome.event_id = event.id
        if not self.hard_bounced_deliveries:
            return
        first_per_digest = (
            sa.select(sa.func.min(Delivery.id))
            .where(Delivery.id.in_(self.hard_bounced_deliveries))
            .group_by(Delivery.digest_id)
        )
        for delivery_id in list(self.session.scalars(first_per_digest)):
            pause_if_bouncing(self.session, delivery_id, self.settings.bounce_pause_rate)


def process_inbound_message(
    session: Session, message_id: int, *, settings: Settings | None = None
) -> ProcessResult:
    """Read a stored message and act on it; a second run (or a second copy) changes nothing."""
    return process_inbound_messages(session, [message_id], settings=settings)[0]


def process_inbound_messages(
    session: Session, message_ids: list[int], *, settings: Settings | None = None
) -> list[ProcessResult]:
    """:func:`process_inbound_message` for several messages at once, in their order."""
    query = sa.select(InboundMessage).where(InboundMessage.id.in_(message_ids))
    stored = {row.id: row for row in session.scalars(query)}
    missing = [i for i in message_ids if i not in stored]
    if missing:
        raise LookupError(f"no inbound message {missing[0]}")
    return process_stored_messages(session, [stored[i] for i in message_ids], settings=settings)


def process_stored_messages(
    session: Session, messages: list[InboundMessage], *, settings: Settings | None = None
) -> list[ProcessResult]:
    """Process messages the caller has just stored in this session (no second read of their bytes)."""
    settings = settings or get_settings()
    batch = _Batch(session, settings)
    fresh = {m.id: read_report(m.raw) for m in messages if m.state == "received"}
    batch.prefetch([(fresh[m.id], m.report_key) for m in messages if m.id in fresh])
    results = []
    with session.no_autoflush:
        for inbound in messages:
            if inbound.id not in fresh:
                results.append(_recorded_result(session, inbound))
                continue
            report = fresh[inbound.id]
            source = _Source(inbound.report_key, inbound.id, reporting_mta=report.reporting_mta)
            _apply_report(batch, report, inbound.envelope_recipient, source)
            outcomes = source.outcomes
            duplicate = bool(outcomes) and all(o.action == Action.ALREADY_SEEN for o in outcomes)
            inbound.state = "duplicate" if duplicate else "processed"
            inbound.kind = report.kind.value
            inbound.processed_at = clock.now()
            results.append(ProcessResult(report.kind, outcomes, inbound.id, report.reporting_mta, duplicate))
    batch.finish()
    return results


def apply_provider_event(
    session: Session,
    event: ProviderEvent,
    *,
    settings: Settings | None = None,
    inbound_message_id: int | None = None,
) -> ProcessResult:
    """Act on one provider webhook event; the same (provider, event id) again changes nothing."""
    settings = settings or get_settings()
    kind = _KIND_OF_VERDICT.get(event.verdict, ReportKind.BOUNCE)
    source = _Source(None, inbound_message_id, event.provider[:32], event.event_id[:255], event.reporting_mta)
    batch = _Batch(session, settings)
    seen = sa.select(BounceEvent.id).where(
        BounceEvent.provider == source.provider, BounceEvent.provider_event_id == source.provider_event_id
    )
    if session.scalar(seen.limit(1)) is not None:
        batch.seen.add((source.provider, source.provider_event_id))
    address = event.address.strip().lower()
    links = _links_by_token(
        session, [verp.read_token(settings, event.verp_token)] if event.verp_token else []
    )
    # One event, one verdict (the provider's id is unique): on the address it names if that is a
    # subscriber, else on the subscriber our token names (the message was forwarded, or the
    # provider rewrote the address).
    link = _link_for(batch, address, links) or next(iter(links.values()), None)
    if link is not None:
        address = link.subscriber.email
    with session.no_autoflush:
        _act(batch, source, address, event.verdict, event.status, event.diagnostic, link)
    batch.finish()
    duplicate = all(o.action == Action.ALREADY_SEEN for o in source.outcomes)
    return ProcessResult(kind, source.outcomes, inbound_message_id, event.reporting_mta, duplicate)


def _apply_report(batch: _Batch, report: Report, envelope_recipient: str | None, source: _Source) -> None:
    session, settings = batch.session, batch.settings
    links = _links_by_token(session, _carried_tokens(settings, report, envelope_recipient))
    links.update(_links_by_unsubscribe_url(session, settings, report, links))
    by_message_id = {
        link.subscriber.id: link
        for message_id in report.original_message_ids
        if (link := batch.rows_by_message_id.get(message_id)) is not None
    }
    for recipient in report.recipients:
        link = _link_for(batch, recipient.address, links, by_message_id)
        _act(
            batch, source, recipient.address, recipient.verdict, recipient.status, recipient.diagnostic, link
        )
    verdict = strongest([r.verdict for r in report.recipients]) if report.recipients else report.verdict
    if report.kind not in (ReportKind.BOUNCE, ReportKind.COMPLAINT, ReportKind.UNPARSED):
        return
    acted = {o.subscriber_id for o in source.outcomes}
    for link in links.values():
        if link.subscriber.id not in acted and verdict != BounceVerdict.NONE:
            diagnostic = report.diagnostic or "named by our token in the report"
            _act(batch, source, link.subscriber.email, verdict, None, diagnostic, link)


def _act(
    batch: _Batch,
    source: _Source,
    address: str,
    verdict: BounceVerdict,
    status: str | None,
    diagnostic: str | None,
    link: _Link | None,
) -> None:
    """Apply one verdict to one address (once per report or provider event) and record it."""
    # A broken report can carry anything. The address column is NOT NULL: an empty address stays "".
    address = storable(address, 320) or ""
    status = storable(status, 16)
    diagnostic = storable(diagnostic)
    outcome = RecipientOutcome(address, verdict, Action.ALREADY_SEEN, status, diagnostic)
    if link is not None:
        outcome.subscriber_id = link.subscriber.id
        outcome.delivery_id, outcome.confirmation_id = link.delivery_id, link.confirmation_id
    source.outcomes.append(outcome)
    key = (
        (source.provider, source.provider_event_id)
        if source.provider_event_id
        else (source.report_key, address)
    )
    if key in batch.seen:
        return
    batch.seen.add(key)
    reason = f"{verdict.value} {status or ''} {diagnostic or ''}".strip()
    subscriber = link.subscriber if link is not None else None
    outcome.action = apply_verdict(
        batch.session,
        subscriber,
        verdict,
        reason=reason,
        suppressions=batch.suppressions,
        delivery_id=outcome.delivery_id,
    )
    event = BounceEvent(
        recorded_at=clock.now(),
        inbound_message_id=source.inbound_message_id,
        address=address,
        verdict=verdict,
        status=status,
        diagnostic=diagnostic,
        reporting_mta=storable(source.reporting_mta, 255) or None,  # None also if it was only NULs
        subscriber_id=outcome.subscriber_id,
        delivery_id=outcome.delivery_id,
        confirmation_id=outcome.confirmation_id,
        action=outcome.action.value,
        provider=source.provider,
        provider_event_id=source.provider_event_id,
        report_key=source.report_key,
    )
    batch.session.add(event)
    batch.events.append((outcome, event))
    if verdict == BounceVerdict.HARD and outcome.delivery_id is not None:
        batch.hard_bounced_deliveries.add(outcome.delivery_id)


def _carried_tokens(settings: Settings, report: Report, envelope_recipient: str | None) -> list[VerpTarget]:
    """The rows named by verified VERP tokens in the envelope or anywhere in the report."""
    if settings.bounce_address is None:
        return []
    local, _, domain = settings.bounce_address.partition("@")
    pattern = re.compile(rf"{re.escape(local)}\+([a-z0-9-]{{1,40}})@{re.escape(domain)}", re.IGNORECASE)
    found = [t for t in pattern.findall(report.text) if t]
    targets = [verp.read_token(settings, token) for token in dict.fromkeys(t.lower() for t in found)]
    if envelope_recipient:
        targets.append(parse_verp_recipient(settings, envelope_recipient))
    return list(dict.fromkeys(t for t in targets if t is not None))


def _links_by_token(session: Session, targets: list[VerpTarget | None]) -> dict[int, _Link]:
    """Subscribers named by verified VERP tokens, linked to the row each token names."""
    links: dict[int, _Link] = {}
    for target in targets:
        if target is None:
            continue
        model = Delivery if target.delivery_id is not None else Confirmation
        row = session.get(model, target.row_id)
        subscriber = session.get(Subscriber, row.subscriber_id) if row is not None else None
        if subscriber is not None:
            links[subscriber.id] = _Link(subscriber, target.delivery_id, target.confirmation_id)
    return links


def _links_by_unsubscribe_url(
    session: Session, settings: Settings, report: Report, known: dict[int, _Link]
) -> dict[int, _Link]:
    """Subscribers named by the signed unsubscribe link in the returned message's headers."""
    links: dict[int, _Link] = {}
    prefix = f"{settings.base_url}/{PATHS[Purpose.UNSUBSCRIBE]}/"
    for url in report.unsubscribe_urls:
        if not url.startswith(prefix):
            continue
        try:
            subscriber_id = read_token(settings, Purpose.UNSUBSCRIBE, url[len(prefix) :])[0]
        except BadToken:
            continue
        subscriber = session.get(Subscriber, subscriber_id) if isinstance(subscriber_id, int) else None
        if subscriber is not None and subscriber.id not in known:
            links[subscriber.id] = _Link(subscriber)
    return links


def _link_for(batch: _Batch, address: str, *sources: dict[int, _Link]) -> _Link | None:
    """The subscriber with this address, linked to the row a token or Message-ID names."""
    subscriber = batch.subscriber(address)
    if subscriber is None:
        return None
    for links in sources:
        if subscriber.id in links:
            return links[subscriber.id]
    return _Link(subscriber)


def _recorded_result(session: Session, inbound: InboundMessage) -> ProcessResult:
    """What an already processed message did, read back from its events."""
    events = session.scalars(
        sa.select(BounceEvent).where(BounceEvent.inbound_message_id == inbound.id).order_by(BounceEvent.id)
    )
    outcomes = [
        RecipientOutcome(
            e.address,
            e.verdict,
            Action.ALREADY_SEEN,
            e.status,
            e.diagnostic,
            e.subscriber_id,
            e.delivery_id,
            e.confirmation_id,
            e.id,
        )
        for e in events
    ]
    kind = ReportKind(inbound.kind) if inbound.kind else ReportKind.UNPARSED
    return ProcessResult(kind, outcomes, inbound.id, duplicate=True)
