"""``papermail db``: schema migrations."""

import click

from papermail.cli.base import settings_or_exit
from papermail.cli.output import echo_json, json_option
from papermail.db import migrate


@click.group()
def db() -> None:
    """Database schema commands."""


@db.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@json_option
def upgrade(revision: str, as_json: bool) -> None:
    """Migrate the database to the newest schema."""
    settings = settings_or_exit()
    before = migrate.current_revision(settings)
    migrate.upgrade(settings, revision)
    after = migrate.current_revision(settings)
    if as_json:
        echo_json({"before": before, "after": after, "changed": before != after})
    elif before == after:
        click.echo(f"database already at {after}")
    else:
        click.echo(f"migrated database from {before or 'empty'} to {after}")


@db.command()
@json_option
def current(as_json: bool) -> None:
    """Show the database's revision and the newest one shipped."""
    settings = settings_or_exit()
    database, package = migrate.current_revision(settings), migrate.head_revision(settings)
    if as_json:
        echo_json({"database": database, "package": package, "up_to_date": database == package})
        return
    click.echo(f"database: {database or 'empty'}")
    click.echo(f"package:  {package}")
    if database != package:
        click.echo("run `papermail db upgrade` to migrate it")
