"""The two writes every message makes on its delivery row, each one round trip where it can be.

The statements are built once and, on PostgreSQL, compiled once: constructing them per message cost
more than executing them. :mod:`papermail.sending.claims` decides what they write.
"""

from __future__ import annotations

import enum
from functools import cache

import sqlalchemy as sa
from sqlalchemy.orm import Session

from papermail.db.models import DeliveryStatus, SendState, Subscriber, SubscriberStatus, Suppression
from papermail.db.types import UTCDateTime

# A claim's outcome may still be recorded while the row is sending, or after the sweeper gave up on
# the claim and called it uncertain: the 250 we then got settles the question.
OWNED = (DeliveryStatus.SENDING, DeliveryStatus.UNCERTAIN)


class RowWrites:
    """The hand-over and the outcome of one message, each committed as it is made.

    On PostgreSQL each is a single autocommit statement, one round trip instead of BEGIN, UPDATE
    and COMMIT, run as a server-side prepared statement straight on the driver's connection (the
    SQL is compiled once from the SQLAlchemy statement), each on a connection of its own:

    * hand-overs on one whose commits wait for the disk: losing a hand-over in a database crash
      could let a delivered message be sent again;
    * outcomes on one with ``synchronous_commit`` off, which saves a disk flush per message:
      losing the last fraction of a second of outcomes (only if PostgreSQL itself crashes)
      leaves those rows handed over, so the sweeper reports them uncertain, never a duplicate.
      Other sessions see each commit at once either way.

    SQLite has no round trips to save; there both go through the batch's session.
    """

    def __init__(
        self, session: Session, model: type[SendState], awaiting: tuple[SubscriberStatus, ...]
    ) -> None:
        self.session, self.model, self.awaiting = session, model, awaiting
        self.durable: sa.Connection | None = None
        self.fast: sa.Connection | None = None
        engine = session.get_bind()
        # A session bound to one connection (a caller's transaction) writes through that session.
        if isinstance(engine, sa.Engine) and engine.dialect.name == "postgresql":
            self.durable = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self.fast = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self.fast.exec_driver_sql("SET synchronous_commit TO off")

    def hand_over(self, params: dict) -> bool:
        return self._execute(self.durable, _HAND_OVER(self.model, self.awaiting), params)

    def settle(self, params: dict) -> bool:
        return self._execute(self.fast, _SETTLE(self.model), params)

    def _execute(self, connection: sa.Connection | None, statement: sa.Update, params: dict) -> bool:
        if connection is None:
            # A transaction of its own that starts with this write: on SQLite, one that had read
            # first would fail outright if another process committed in between.
            self.session.commit()
            changed = self.session.execute(statement, params).rowcount == 1
            self.session.commit()
            return changed
        compiled = _compiled(statement, connection.dialect)
        values = {
            name: value.value if isinstance(value, enum.Enum) else value
            for name, value in compiled.construct_params(params).items()
        }
        with connection.connection.driver_connection.cursor() as cursor:
            cursor.execute(compiled.string, values, prepare=True)
            return cursor.rowcount == 1

    def close(self) -> None:
        if self.fast is not None:
            try:  # it goes back to the pool, where the next user expects durable commits
                self.fast.exec_driver_sql("RESET synchronous_commit")
            except sa.exc.DBAPIError:
                self.fast.invalidate()
            self.fast.close()
        if self.durable is not None:
            self.durable.close()


@cache
def _compiled(statement: sa.Update, dialect: sa.Dialect) -> sa.sql.compiler.Compiled:
    return statement.compile(dialect=dialect)


@cache
def _HAND_OVER(model: type[SendState], awaiting: tuple[SubscriberStatus, ...]) -> sa.Update:
    """Mark a claimed row handed over, if still claimed by us and its subscriber still mailable."""
    row = model.__table__.c
    now = sa.bindparam("now", type_=UTCDateTime())
    return (
        sa.update(model.__table__)
        .where(
            row.id == sa.bindparam("row_id"),
            row.claims == sa.bindparam("claim"),
            row.status == DeliveryStatus.SENDING,
            sa.exists().where(
                Subscriber.id == row.subscriber_id,
                # Not status IN (...): an expanding IN can't be compiled once for reuse.
                sa.or_(*(Subscriber.status == status for status in awaiting)),
            ),
            ~sa.exists().where(Suppression.email_hash == sa.bindparam("hashed")),
        )
        .values(
            attempt_started_at=now,
            attempts=row.attempts + 1,
            first_attempt_at=sa.func.coalesce(row.first_attempt_at, now),
            message_id=sa.bindparam("message_id_value"),
            lease_until=sa.bindparam("lease_end", type_=UTCDateTime()),
            updated_at=now,
        )
    )


@cache
def _SETTLE(model: type[SendState]) -> sa.Update:
    """Record an outcome on a row we still hold (sending, or called uncertain meanwhile)."""
    row = model.__table__.c

    def unless_null(name: str, column: sa.Column, type_: sa.types.TypeEngine) -> sa.ColumnElement:
        return sa.func.coalesce(sa.bindparam(name, type_=type_), column)

    return (
        sa.update(model.__table__)
        .where(
            row.id == sa.bindparam("row_id"),
            row.claims == sa.bindparam("claim"),
            # Not status IN (...): an expanding IN can't be compiled once for reuse.
            sa.or_(*(row.status == status for status in OWNED)),
        )
        .values(
            status=sa.bindparam("new_status", type_=row.status.type),
            lease_until=None,
            attempt_started_at=None,
            updated_at=sa.bindparam("now", type_=UTCDateTime()),
            next_attempt_at=sa.bindparam("next_attempt_value", type_=UTCDateTime()),
            sent_at=unless_null("sent_at_value", row.sent_at, UTCDateTime()),
            last_smtp_code=unless_null("code", row.last_smtp_code, sa.Integer()),
            last_smtp_reply=unless_null("reply", row.last_smtp_reply, sa.Text()),
            skip_reason=unless_null("skip_reason_value", row.skip_reason, sa.Text()),
        )
    )
