"""Engines, sessions and the schema's migrations.

SQLite (the embedded default) runs in WAL mode with foreign keys on and a busy
timeout, so the worker and a staff command can share one file. PostgreSQL URLs work
unchanged (``postgresql+psycopg://...``; a plain ``postgresql://`` is read the same).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from .errors import SchemaOutOfDate

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "current_revision",
    "head_revision",
    "make_engine",
    "make_session_factory",
    "open_database",
    "upgrade",
]

MIGRATIONS = Path(__file__).with_name("migrations")


def _normalise_url(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``, with the SQLite pragmas this program relies on."""
    url = _normalise_url(url)
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {}).setdefault("timeout", 30)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
    finally:
        cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


# The newest migration; a test checks it against the migrations folder. Kept as a
# constant so that opening the database needs no Alembic import (faster commands).
HEAD_REVISION = "0012"


def _alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    """The newest revision in the migrations folder (read by Alembic)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's revision, or None for a database without our schema."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (``intake db upgrade``)."""
    from alembic import command

    command.upgrade(_alembic_config(engine), revision)


def open_database(url: str, *, create: bool = True) -> Engine:
    """Open the database; create the schema in an empty one.

    Raises:
        SchemaOutOfDate: the database has an older schema; run ``intake db upgrade``.
    """
    engine = make_engine(url)
    current = current_revision(engine)
    if current == HEAD_REVISION:
        return engine
    empty = not inspect(engine).get_table_names()
    if current is None and empty and create:
        upgrade(engine)
        return engine
    engine.dispose()
    raise SchemaOutOfDate(
        f"the database schema is at {current or 'an unknown version'}, this program needs "
        f"{HEAD_REVISION}; back up the database, then run: intake db upgrade"
    )
