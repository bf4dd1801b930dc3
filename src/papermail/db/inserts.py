"""``INSERT … ON CONFLICT`` for whichever database the session talks to."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignoring_conflicts(session: Session, model: type, conflict_columns: Sequence[str]):
    """An insert into ``model``'s table that skips rows clashing on the unique ``conflict_columns``.

    It targets the table, not the ORM entity: run through ``session.connection()``, a batch goes
    out as a few multi-row statements. The ORM's bulk path split 3,000 rows into ~300 statements
    and spliced their RETURNING rows together in quadratic time.
    """
    return dialect_insert(session, model).on_conflict_do_nothing(index_elements=list(conflict_columns))


def dialect_insert(session: Session, model: type):
    """An insert into ``model``'s table in the session's dialect, so it can say ``ON CONFLICT``."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(model.__table__)


def insert_many_returning(
    session: Session,
    model: type,
    conflict_columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    returning: Sequence[Any],
) -> list[sa.Row]:
    """Insert ``rows`` (all with the same keys) as :func:`insert_ignoring_conflicts` does; return
    the ``returning`` columns of the rows inserted.

    On PostgreSQL the rows go as one JSON document that ``json_to_recordset`` unpacks: as a multi-row
    VALUES list, psycopg parsed its ~11 placeholders a row in Python, three times the cost of the
    insert itself (0.24 s against 0.08 s per 1,000 deliveries). SQLite takes the VALUES list.
    """
    statement = insert_ignoring_conflicts(session, model, conflict_columns)
    if session.get_bind().dialect.name != "postgresql":
        return list(session.connection().execute(statement.returning(*returning), rows))
    table = model.__table__
    names = list(rows[0])
    document = sa.cast(sa.bindparam("rows", type_=sa.Text), postgresql.JSON)
    records = (
        sa.func.json_to_recordset(document)
        .table_valued(*(sa.column(name, table.c[name].type) for name in names))
        .render_derived(with_types=True)
    )
    # from_select adds the columns' Python-side defaults, as the VALUES insert does.
    statement = statement.from_select(names, sa.select(*(records.c[name] for name in names)))
    payload = json.dumps(list(rows), default=_json_value)
    return list(session.connection().execute(statement.returning(*returning), {"rows": payload}))


def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        # As UTCDateTime binds them: aware times only, in UTC.
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: use papermail.clock.now()")
        return value.astimezone(UTC).isoformat()
    raise TypeError(f"no JSON form for {value!r}")
