"""Alembic, driven from Python so migrations run from an installed wheel in any directory."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from papermail.config import Settings, get_settings

# Through bookkeeping, so the tables of both model modules are on Base.metadata.
from papermail.db.bookkeeping import Base
from papermail.db.session import get_engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(settings: Settings | None = None) -> Config:
    """An Alembic Config pointing at the packaged migrations and the configured database."""
    settings = settings or get_settings()
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # "%" is Alembic's interpolation character; a password may contain one.
    config.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    return config


def upgrade(settings: Settings | None = None, revision: str = "head") -> None:
    """Migrate the database to ``revision``."""
    command.upgrade(alembic_config(settings), revision)


def current_revision(settings: Settings | None = None) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    settings = settings or get_settings()
    with get_engine(settings.database_url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(settings: Settings | None = None) -> str | None:
    """The newest revision shipped in the package."""
    return ScriptDirectory.from_config(alembic_config(settings)).get_current_head()


def schema_drift(settings: Settings | None = None) -> list[object]:
    """Differences between the models and the migrated database (empty when they agree)."""
    settings = settings or get_settings()
    with get_engine(settings.database_url).connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)
