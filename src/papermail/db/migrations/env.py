"""Alembic environment: runs the packaged migrations against the configured database."""

from alembic import context

# Through bookkeeping, so the tables of both model modules are on Base.metadata.
from papermail.db.bookkeeping import Base
from papermail.db.session import get_engine

config = context.config
url = config.get_main_option("sqlalchemy.url")


def run_migrations() -> None:
    with get_engine(url).connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations()
