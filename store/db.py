"""Engines, sessions and the schema's migrations.

SQLite (the embedded default) runs in WAL mode with foreign keys on and a busy
timeout, so the worker and a staff command can share one file, and with
``synchronous=FULL``: every commit is on disk before the server is told (flag or
MOVE) or mail is sent. Work that is simply done again if its commit is lost -- a
stage's results, its claims -- runs inside :func:`redoable_work`, where commits are
``synchronous=NORMAL`` (in WAL mode: still atomic, but the last ones may roll back on
power loss; the stage is then due again). PostgreSQL URLs work unchanged
(``postgresql+psycopg://...``; a plain ``postgresql://`` is read the same).
"""

from __future__ import annotations

import contextvars
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from .base import use_dialect
from .errors import DatabaseMissing, DatabaseUnavailable, SchemaOutOfDate

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "current_revision",
    "describe_url",
    "explain_error",
    "head_revision",
    "is_busy",
    "make_engine",
    "make_session_factory",
    "open_database",
    "redoable_work",
    "sqlite_path",
    "upgrade",
]

MIGRATIONS = Path(__file__).with_name("migrations")
log = logging.getLogger(__name__)


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
        event.listen(engine, "checkout", _sqlite_durability)
    else:
        kwargs.setdefault("pool_pre_ping", True)
        engine = create_engine(url, **kwargs)
    use_dialect(engine.dialect.name)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on power loss,
        # and a commit here is what allows the server to flag or MOVE the message.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
        # Deleted content is overwritten with zeros, so erased personal data does not
        # linger in free pages of the file (see store.erasure).
        cursor.execute("PRAGMA secure_delete=ON")
    finally:
        cursor.close()


# False inside redoable_work(): what this thread's (or task's) SQLite commits need.
_durable: contextvars.ContextVar[bool] = contextvars.ContextVar("durable", default=True)


@contextmanager
def redoable_work() -> Iterator[None]:
    """Commits made inside may be undone by a power loss (SQLite), never half-made.

    For work that is done again when its commit is missing (the stages): SQLite then
    commits with ``synchronous=NORMAL``, which in WAL mode skips the wait for the disk
    on each commit. The next ``FULL`` commit (storing mail, an outbox claim) makes
    everything before it durable too. No effect on PostgreSQL.
    """
    token = _durable.set(False)
    try:
        yield
    finally:
        _durable.reset(token)


def _sqlite_durability(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """Give a pooled connection the durability its user needs (set between transactions)."""
    wanted = "FULL" if _durable.get() else "NORMAL"
    if record.info.get("synchronous", "FULL") == wanted or dbapi_connection.in_transaction:
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA synchronous={wanted}")
    finally:
        cursor.close()
    record.info["synchronous"] = wanted


# PostgreSQL's "try again" errors: serialization failure, deadlock, lock not available.
_BUSY_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` says the database was busy, not that the work was wrong.

    SQLite's "database is locked" (another process held the write lock past the busy
    timeout) and PostgreSQL's serialization failures, deadlocks and lock timeouts:
    the same work is expected to succeed when tried again.
    """
    cause = getattr(exc, "orig", None) or exc
    if getattr(cause, "sqlstate", None) in _BUSY_SQLSTATES:
        return True
    message = str(cause).lower()
    return isinstance(cause, sqlite3.OperationalError) and (
        "locked" in message or "busy" in message
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


# The newest migration; a test checks it against the migrations folder. Kept as a
# constant so that opening the database needs no Alembic import (faster commands).
HEAD_REVISION = "0013"


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
    if engine.dialect.name == "postgresql":
        from .queue import ensure_queue_schema  # the job queue of several processors

        ensure_queue_schema(engine)


def describe_url(url: str) -> str:
    """Where ``url`` points, for people: the SQLite file, or the server without password."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "an unreadable URL"
    if parsed.drivername.startswith("sqlite"):
        return f"SQLite file {parsed.database}" if parsed.database else "SQLite in memory"
    where = f"{parsed.host or 'localhost'}" + (f":{parsed.port}" if parsed.port else "")
    return f"PostgreSQL database {parsed.database or '?'} on {where}" + (
        f" as {parsed.username}" if parsed.username else ""
    )


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL, or None (another database, or in memory)."""
    parsed = make_url(url)
    name = parsed.database
    if not parsed.drivername.startswith("sqlite") or not name or name == ":memory:":
        return None
    return None if name.startswith("file:") else Path(name)


def explain_error(url: str, exc: BaseException) -> str:
    """One line on why the database at ``url`` could not be used, and what to do."""
    where = describe_url(url)
    first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0][:200]
    path = sqlite_path(url) if not isinstance(exc, ArgumentError) else None
    if path is not None and not path.parent.is_dir():
        return (
            f"database.url: cannot open the {where}: the folder {path.parent} does not exist; "
            "create it or change database.url"
        )
    if path is not None:
        hint = "check that the file and its folder are writable by this user"
    elif isinstance(exc, ArgumentError) or "driver" in first.lower() or "plugin" in first.lower():
        hint = "use sqlite:///FILE or postgresql://user@host/database"
    else:
        hint = "check that the server is running and the host, port, database and user"
    return f"database.url: cannot open the {where} ({first}); {hint}"


@contextmanager
def _schema_lock(engine: Engine) -> Iterator[None]:
    """Held while a process checks or creates the schema: one creator at a time.

    SQLite: an exclusive ``flock`` on a file beside the database; PostgreSQL: a
    session advisory lock. Only taken when the schema is not current.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(74823001)"))
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(74823001)"))
                connection.commit()
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    import fcntl

    with open(f"{database}.schema-lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_database(url: str, *, create: bool = True) -> Engine:
    """Open the database; create the schema in an empty one when ``create``.

    Raises:
        DatabaseMissing: ``create`` is false and the SQLite file does not exist.
        DatabaseUnavailable: the database cannot be reached or opened.
        SchemaOutOfDate: the database has an older schema; run ``intake db upgrade``.
    """
    path = sqlite_path(url)
    if not create and path is not None and not path.exists():
        if not path.parent.is_dir():
            raise DatabaseMissing(
                f"database.url: the folder {path.parent} of the SQLite file does not exist; "
                "create it or change database.url"
            )
        raise DatabaseMissing(
            f"database.url: there is no database at {path} yet; `intake poll` or "
            "`intake db upgrade` creates it (or is this the configuration you meant?)"
        )
    try:
        engine = make_engine(url)
        current = current_revision(engine)
        if current == HEAD_REVISION:
            log.info("database opened", extra={"database": describe_url(url), "schema": current})
            return engine
        # Not current: another process may be creating the schema this very moment (a
        # worker and a command started together). Wait for it, then look again.
        with _schema_lock(engine):
            current = current_revision(engine)
            empty = not inspect(engine).get_table_names()
            if current is None and empty and create:
                log.info("creating the schema", extra={"database": describe_url(url)})
                upgrade(engine)
                return engine
    except (SQLAlchemyError, ImportError) as exc:
        raise DatabaseUnavailable(explain_error(url, exc)) from exc
    if current == HEAD_REVISION:
        return engine
    engine.dispose()
    if current is None and empty:
        raise SchemaOutOfDate(
            f"the {describe_url(url)} is empty; run `intake db upgrade` to create the schema"
        )
    raise SchemaOutOfDate(
        f"the schema of the {describe_url(url)} is at {current or 'an unknown version'}, "
        f"this program needs {HEAD_REVISION}; back up the database, then run: intake db upgrade"
    )
