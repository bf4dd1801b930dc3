"""``INSERT … ON CONFLICT DO NOTHING`` for whichever database the session talks to."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignoring_conflicts(session: Session, model: type, conflict_columns: Sequence[str]):
    """An insert into ``model``'s table that skips rows clashing on the unique ``conflict_columns``.

    It targets the table, not the ORM entity: run through ``session.connection()``, a batch goes
    out as a few multi-row statements. The ORM's bulk path split 3,000 rows into ~300 statements
    and spliced their RETURNING rows together in quadratic time.
    """
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(model.__table__).on_conflict_do_nothing(index_elements=list(conflict_columns))
