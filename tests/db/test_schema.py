"""The schema: migrations match the models on both backends, and the core constraints hold."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from papermail import clock
from papermail.db import get_engine, migrate
from papermail.db.models import Delivery, Digest, Paper, Subscriber


def test_migrations_and_models_do_not_drift(settings):
    assert migrate.current_revision(settings) == migrate.head_revision(settings)
    assert migrate.schema_drift(settings) == []


def test_every_constraint_has_a_conventional_name(settings):
    inspector = sa.inspect(get_engine(settings.database_url))
    names = [uc["name"] for uc in inspector.get_unique_constraints("deliveries")]
    assert "uq_deliveries_subscriber_id_period_key" in names


def _subscriber(session, email="a@example.org") -> Subscriber:
    subscriber = Subscriber(email=email, created_at=clock.now())
    session.add(subscriber)
    session.flush()
    return subscriber


def test_one_delivery_per_subscriber_and_period(session):
    subscriber = _subscriber(session)
    digest = Digest(period_key="2026-W48", created_at=clock.now())
    session.add(digest)
    session.flush()
    row = {
        "digest_id": digest.id,
        "subscriber_id": subscriber.id,
        "period_key": "2026-W48",
        "scheduled_for": clock.now(),
        "planned_at": clock.now(),
        "updated_at": clock.now(),
    }
    session.add(Delivery(**row))
    session.flush()
    session.add(Delivery(**row))
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()


def test_times_come_back_as_aware_utc(session):
    tokyo = timezone(timedelta(hours=9))
    seen = datetime(2026, 11, 26, 17, 30, tzinfo=tokyo)
    session.add(Paper(arxiv_id="2611.00001", title="0", first_seen_at=seen, last_seen_at=seen))
    session.flush()
    session.expire_all()
    paper = session.scalars(sa.select(Paper)).one()
    assert paper.first_seen_at == datetime(2026, 11, 26, 8, 30, tzinfo=UTC)
    assert paper.first_seen_at.tzinfo is UTC
    assert paper.title == "0"


def test_naive_datetimes_are_refused(session):
    session.add(
        Paper(
            arxiv_id="x",
            title="t",
            first_seen_at=datetime(2026, 1, 1),
            last_seen_at=clock.now(),
        )
    )
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        session.flush()


def test_unknown_status_is_refused(session):
    subscriber = _subscriber(session)
    subscriber.status = "sleeping"
    with pytest.raises(sa.exc.StatementError):
        session.flush()


def test_subscriber_ids_are_never_reused(session):
    """Links carry the id: after an erasure, a newcomer must not inherit the old person's links."""
    first = _subscriber(session, "first@example.org")
    erased_id = first.id
    session.delete(first)
    session.flush()
    assert _subscriber(session, "second@example.org").id > erased_id
