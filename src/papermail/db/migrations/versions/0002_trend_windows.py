"""trend windows and arXiv id months

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05 12:10:00

Scoring runs record their velocity window ("24h" for daily digests, "7d" for weekly ones; existing
runs were 24-hour runs). Papers get ``id_month``, the start of the month their arXiv id was issued
in, backfilled here from the ids: it bounds the age of a paper whose publication date is unknown.
The id parsing is copied, not imported: a migration must not change when the code does.
"""

import re
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import papermail.db.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NEW_STYLE = re.compile(r"^(\d{2})(\d{2})\.\d{4,5}(?:v\d+)?$")
_OLD_STYLE = re.compile(r"^[a-z-]+(?:\.[A-Za-z-]+)?/(\d{2})(\d{2})\d{3}(?:v\d+)?$")
BACKFILL_BATCH = 5000


def _id_month(arxiv_id: str) -> datetime | None:
    if match := _NEW_STYLE.match(arxiv_id):
        century = 2000
    elif match := _OLD_STYLE.match(arxiv_id):
        century = 1900 if int(match[1]) >= 91 else 2000
    else:
        return None
    month = int(match[2])
    return datetime(century + int(match[1]), month, 1, tzinfo=UTC) if 1 <= month <= 12 else None


def upgrade() -> None:
    with op.batch_alter_table("scoring_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("window", sa.String(length=8), server_default="24h", nullable=False))
        batch_op.create_index(batch_op.f("ix_scoring_runs_window_as_of"), ["window", "as_of"], unique=False)
    with op.batch_alter_table("papers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("id_month", papermail.db.types.UTCDateTime(timezone=True), nullable=True)
        )
    papers = sa.table(
        "papers",
        sa.column("id", sa.Integer()),
        sa.column("arxiv_id", sa.String()),
        sa.column("id_month", papermail.db.types.UTCDateTime(timezone=True)),
    )
    connection = op.get_bind()
    after_id = 0
    while rows := connection.execute(
        sa.select(papers.c.id, papers.c.arxiv_id)
        .where(papers.c.id > after_id)
        .order_by(papers.c.id)
        .limit(BACKFILL_BATCH)
    ).all():
        updates = [
            {"row_id": row_id, "month": month} for row_id, arxiv_id in rows if (month := _id_month(arxiv_id))
        ]
        if updates:
            connection.execute(
                papers.update()
                .where(papers.c.id == sa.bindparam("row_id"))
                .values(id_month=sa.bindparam("month")),
                updates,
            )
        after_id = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("papers", schema=None) as batch_op:
        batch_op.drop_column("id_month")
    with op.batch_alter_table("scoring_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scoring_runs_window_as_of"))
        batch_op.drop_column("window")
