"""first-version dates bounded by the arXiv id's month

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 04:10:00

Cross-lists used to be stored with their listing's date as the first version's, so a 2022 paper
cross-listed today ranked as a day old. A first version is out by the end of its id's month: a
later date is dropped (the next fetches look the paper up on the arXiv API again), and one within
a day after it (arXiv announces in the New York evening) becomes the month's end. Data only; the
rule is copied from ``papermail.arxiv_ids``, not imported: a migration must not change when the code does.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from alembic import op

import papermail.db.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000
GRACE = timedelta(days=1)


def _month_end(month_start: datetime) -> datetime:
    if month_start.month == 12:
        return month_start.replace(year=month_start.year + 1, month=1)
    return month_start.replace(month=month_start.month + 1)


def _bounded(month_start: datetime, published_at: datetime) -> datetime | None:
    end = _month_end(month_start)
    return end if published_at < end + GRACE else None


def upgrade() -> None:
    papers = sa.table(
        "papers",
        sa.column("id", sa.Integer()),
        sa.column("id_month", papermail.db.types.UTCDateTime(timezone=True)),
        sa.column("published_at", papermail.db.types.UTCDateTime(timezone=True)),
    )
    dated = (
        sa.select(papers.c.id, papers.c.id_month, papers.c.published_at)
        .where(papers.c.id_month.is_not(None), papers.c.published_at.is_not(None))
        .execution_options(yield_per=BATCH)
    )
    connection = op.get_bind()
    # Read to the end first (the few wrong dates are kept), then write them in one statement.
    wrong = [
        {"row_id": row_id, "published": _bounded(month, published)}
        for row_id, month, published in connection.execute(dated)
        if published >= _month_end(month)
    ]
    if wrong:
        statement = papers.update().where(papers.c.id == sa.bindparam("row_id"))
        connection.execute(statement.values(published_at=sa.bindparam("published")), wrong)


def downgrade() -> None:
    # The dropped dates were wrong; there is nothing to restore.
    pass
