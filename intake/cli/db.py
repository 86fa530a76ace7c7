"""``intake db``: the database schema."""

from __future__ import annotations

import click

from .root import _Context, _errors, pass_ctx

__all__ = ["db_group"]


@click.group("db")
def db_group() -> None:
    """Manage the database schema."""


@db_group.command("upgrade")
@pass_ctx
def db_upgrade(state: _Context) -> None:
    """Create or upgrade the schema to this version (back up first)."""
    with _errors():
        url = state.app.settings.database.connect_url
        from store import db

        engine = db.make_engine(url)
        try:
            db.upgrade(engine)
            click.echo(f"schema at {db.current_revision(engine)}")
        finally:
            engine.dispose()
