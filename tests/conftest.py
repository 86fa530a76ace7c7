"""Shared fixtures: real databases (SQLite and PostgreSQL), a real Dovecot, settings.

PostgreSQL is the server named by ``INTAKE_TEST_POSTGRES_URL`` (default: the one on
127.0.0.1:5432, database ``test``). Each test gets its own schema, dropped after.
When it cannot be reached, CI (``CI=true``) fails; elsewhere the PostgreSQL variants
are left out and the run says so at the end, with how to run them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from intake.app import App
from intake.config import Settings, parse_settings
from tests.support import Dovecot, SmtpServer

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
POSTGRES_URL = os.environ.get(
    "INTAKE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DEADLINE = dt.datetime(2018, 7, 27, 23, 59, 59)  # Keep it Local: Friday 27 July 2018
_postgres_state: dict[str, Any] = {}


def _postgres_reachable() -> str | None:
    if "error" not in _postgres_state:
        try:
            engine = create_engine(POSTGRES_URL)
            with engine.connect() as conn:
                conn.execute(text("select 1"))
            engine.dispose()
            _postgres_state["error"] = None
        except OperationalError as exc:
            _postgres_state["error"] = str(exc).splitlines()[0]
    return _postgres_state["error"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wants_pg = [item for item in items if "postgres" in item.keywords]
    if not wants_pg:
        return
    error = _postgres_reachable()
    if error is None:
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(f"PostgreSQL at {POSTGRES_URL} is unreachable in CI: {error}")
    config.hook.pytest_deselected(items=wants_pg)
    items[:] = [item for item in items if "postgres" not in item.keywords]
    _postgres_state["left_out"] = len(wants_pg)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    left_out = _postgres_state.get("left_out")
    if left_out:
        terminalreporter.write_sep(
            "!",
            f"{left_out} PostgreSQL test(s) did NOT run: {_postgres_state['error']}. "
            "Start PostgreSQL on 127.0.0.1:5432 with a database 'test', or set "
            "INTAKE_TEST_POSTGRES_URL, and run the tests again.",
        )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each kind."""
    with fresh_database(request.param, tmp_path / "intake.db") as url:
        yield url


@contextlib.contextmanager
def fresh_database(kind: str, sqlite_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file at ``sqlite_path``, or a PostgreSQL schema of
    its own that is dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{sqlite_path}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def make_settings(
    db_url: str,
    *,
    inbox: dict[str, Any] | None = None,
    extra: str = "",
    env: dict[str, str] | None = None,
    questions: bool = False,
) -> Settings:
    """Settings for a test: the Keep it Local deadline, a database and an inbox (and, if
    asked, the four questions of the call as ``config.example.toml`` gives them)."""
    document = tomllib.loads(
        f"""
[consultation]
name = "Keep it Local: call for evidence"
deadline = 2018-07-27T23:59:59
reference_prefix = "KIL"
contact = "keepitlocal@example.org"

[database]
url = "{db_url}"

[limits]
parse_timeout_s = 20
{extra}
"""
    )
    document.update(inbox or {"maildir": {"path": "/nonexistent"}})
    if questions:
        example = tomllib.loads((ROOT / "config.example.toml").read_text(encoding="utf-8"))
        document["questions"] = example["questions"]
    return parse_settings(document, env or {})


def write_config(
    folder: Path, extra: str = "", *, url: str | None = None, maildir: str = "inbox"
) -> Path:
    """``folder/config.toml``: Keep it Local, the database at ``url`` (default: a SQLite
    file beside it), the Maildir ``maildir``, then ``extra`` (more TOML sections)."""
    path = folder / "config.toml"
    path.write_text(
        f"""
[consultation]
name = "Keep it Local: call for evidence"
deadline = 2018-07-27T23:59:59
reference_prefix = "KIL"

[database]
url = "{url or f"sqlite:///{folder / 'intake.db'}"}"

[maildir]
path = "{maildir}"
{extra}""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'intake.db'}"


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[Dovecot]:
    with Dovecot() as server:
        yield server


@pytest.fixture
def dovecot(dovecot_server: Dovecot) -> Dovecot:
    """The session's Dovecot with every folder emptied."""
    if not dovecot_server.running:
        dovecot_server.start()
        dovecot_server.wait_ready()
    dovecot_server.clear()
    return dovecot_server


def imap_section(server: Dovecot, **overrides: Any) -> dict[str, Any]:
    section = {
        "host": server.host,
        "port": server.port,
        "security": "none",
        "username": server.user,
        "password_env": "TEST_IMAP_PASSWORD",
        "batch_size": 5,
    }
    section.update(overrides)
    return {"imap": section}


@pytest.fixture
def imap_app(dovecot: Dovecot, db_url: str) -> Iterator[App]:
    """An App on a fresh database, reading the test Dovecot's INBOX."""
    settings = make_settings(
        db_url, inbox=imap_section(dovecot), env={"TEST_IMAP_PASSWORD": dovecot.password}
    )
    app = App(settings)
    yield app
    app.close()


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def smtp(smtp_server: SmtpServer) -> SmtpServer:
    """The session's SMTP server, emptied, with every fault switched off."""
    if not smtp_server.running:
        smtp_server.start()
    smtp_server.reset()
    return smtp_server


def smtp_section(server: SmtpServer, **overrides: Any) -> str:
    values = {
        "host": server.host,
        "port": server.port,
        "security": "none",
        "from": "keepitlocal@example.org",
        "timeout_s": 5,
    }
    values.update(overrides)
    body = "\n".join(
        f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in values.items()
    )
    return "[smtp]\n" + body.replace("'", '"') + "\n"


@pytest.fixture
def ack_app(dovecot: Dovecot, smtp: SmtpServer, db_url: str) -> Iterator[App]:
    """An App reading the test Dovecot and acknowledging through the test SMTP server."""
    settings = make_settings(
        db_url,
        inbox=imap_section(dovecot),
        env={"TEST_IMAP_PASSWORD": dovecot.password},
        extra="\n" + smtp_section(smtp),
    )
    app = App(settings)
    yield app
    app.close()
