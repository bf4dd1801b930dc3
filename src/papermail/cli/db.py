"""``papermail db``: schema migrations."""

import click

from papermail.cli.base import settings_or_exit
from papermail.db import migrate


@click.group()
def db() -> None:
    """Database schema commands."""


@db.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def upgrade(revision: str) -> None:
    """Migrate the database to the newest schema."""
    settings = settings_or_exit()
    before = migrate.current_revision(settings)
    migrate.upgrade(settings, revision)
    after = migrate.current_revision(settings)
    if before == after:
        click.echo(f"database already at {after}")
    else:
        click.echo(f"migrated database from {before or 'empty'} to {after}")


@db.command()
def current() -> None:
    """Show the database's revision and the newest one shipped."""
    settings = settings_or_exit()
    click.echo(f"database: {migrate.current_revision(settings) or 'empty'}")
    click.echo(f"package:  {migrate.head_revision(settings)}")
