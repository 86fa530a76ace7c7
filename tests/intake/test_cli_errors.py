"""Every command against every usual mistake: one line, the right exit code, no traceback.

Configuration mistakes exit 2 and name the key (or the file); a database that cannot
be used exits 1 and names database.url and the file or server. Real files, real
SQLite and PostgreSQL; nothing is mocked.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text

from intake.cli import cli
from store import db
from tests.conftest import ROOT

DEMO_INBOX = ROOT / "examples" / "inbox"
ONE_EML = sorted(p for p in (DEMO_INBOX / "new").iterdir() if not p.name.startswith("."))[0]

# Each command with arguments that pass click's own checks, so the run reaches the
# configuration and the database.
COMMANDS: list[tuple[str, ...]] = [
    ("poll",),
    ("poll", "--no-ack"),
    ("import", str(ONE_EML)),
    ("list",),
    ("list", "--json"),
    ("show", "KIL-00001"),
    ("export", "--format", "csv"),
    ("set-timeliness", "KIL-00001", "late", "--reason", "checked the post mark", "--by", "test"),
    ("reparse", "--all"),
    ("acks",),
    ("resend-ack", "KIL-00001", "--reason", "lost"),
    ("worker",),
    ("status",),
    ("digest", "--print"),
    ("purge", "--before", "2018-01-01", "--yes"),
    ("check",),
    ("db", "upgrade"),
    ("classify",),
    ("auth", "status"),
]
NEEDS_DATABASE = [c for c in COMMANDS if c[0] not in ("check", "auth")]

GOOD = """
[consultation]
name = "Keep it Local: call for evidence"
deadline = 2018-07-27T23:59:59
reference_prefix = "KIL"

[database]
url = "{url}"

[maildir]
path = "inbox"
"""

WITH_DB_PASSWORD = GOOD.replace(
    'url = "{url}"',
    'url = "postgresql://intake@127.0.0.1:9/intake"\npassword_env = "INTAKE_DB_PASSWORD"',
)

# (name, what replaces GOOD, text the one line must contain)
BAD_CONFIGS = [
    ("missing-file", None, "config.example.toml"),
    ("not-toml", "[consultation\nname = 1\n", "not valid TOML"),
    (
        "unknown-key",
        GOOD.replace("reference_prefix", "reference_prefx"),
        "consultation.reference_prefx",
    ),
    ("unknown-section", GOOD + "\n[imapp]\nhost = 'x'\n", "[imapp]"),
    (
        "deadline-with-offset",
        GOOD.replace("2018-07-27T23:59:59", "2018-07-27T23:59:59+01:00"),
        "consultation.deadline: 2018-07-27T23:59:59+01:00 has a zone offset",
    ),
    ("deadline-utc", GOOD.replace("2018-07-27T23:59:59", "2018-07-27T22:59:59Z"), "zone offset"),
    ("bad-url", GOOD.replace("{url}", "not a url"), "database.url"),
    ("both-inboxes", GOOD + "\n[imap]\nhost = 'h'\nusername = 'u'\n", "[imap] or [maildir]"),
]


def _invoke(config: Path, args: tuple[str, ...], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], env=env or {})


def _assert_one_line_error(result: Result, code: int, named: str) -> None:
    output = result.output
    assert result.exit_code == code, output
    # An exception click did not turn into an exit is a crash, whatever the code.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in output
    assert "Usage:" not in output, output
    assert named in output, output
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copytree(DEMO_INBOX, tmp_path / "inbox")
    return tmp_path


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
@pytest.mark.parametrize(
    ("case", "document", "named"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS]
)
def test_bad_config(
    folder: Path, args: tuple[str, ...], case: str, document: str | None, named: str
) -> None:
    """A configuration mistake: exit 2, one line naming the key and the file."""
    config = folder / "config.toml"
    if document is not None:
        config.write_text(document.replace("{url}", f"sqlite:///{folder / 'intake.db'}"))
    result = _invoke(config, args)
    _assert_one_line_error(result, 2, named)
    assert str(config) in result.output


def _stale_schema(url: str) -> None:
    """A database whose schema is older than this program (as after an upgrade)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('0003')"))
    engine.dispose()


@pytest.mark.parametrize("args", NEEDS_DATABASE, ids=" ".join)
class TestBrokenDatabase:
    def test_sqlite_folder_missing(self, folder: Path, args: tuple[str, ...]) -> None:
        """The SQLite file's folder does not exist: exit 1, the folder named."""
        missing = folder / "no-such-folder"
        config = folder / "config.toml"
        config.write_text(GOOD.replace("{url}", f"sqlite:///{missing}/intake.db"))
        result = _invoke(config, args)
        _assert_one_line_error(result, 1, f"the folder {missing}")
        assert "database.url" in result.output and not missing.exists()

    def test_server_unreachable(self, folder: Path, args: tuple[str, ...]) -> None:
        """No PostgreSQL server at the address: exit 1, the server named."""
        config = folder / "config.toml"
        config.write_text(GOOD.replace("{url}", "postgresql://intake@127.0.0.1:9/intake"))
        result = _invoke(config, args)
        _assert_one_line_error(result, 1, "PostgreSQL database intake on 127.0.0.1:9")
        assert "database.url" in result.output

    def test_unknown_driver(self, folder: Path, args: tuple[str, ...]) -> None:
        """A URL for a database this program cannot use: exit 1, what to write instead."""
        config = folder / "config.toml"
        config.write_text(GOOD.replace("{url}", "oracle+nosuchdriver://u@h/db"))
        result = _invoke(config, args)
        _assert_one_line_error(result, 1, "database.url")

    def test_stale_schema(self, folder: Path, db_url: str, args: tuple[str, ...]) -> None:
        """An old schema (SQLite and PostgreSQL): exit 1, and it says to upgrade."""
        _stale_schema(db_url)
        config = folder / "config.toml"
        config.write_text(GOOD.replace("{url}", db_url))
        result = _invoke(config, args)
        named = "database" if args == ("db", "upgrade") else "intake db upgrade"
        _assert_one_line_error(result, 1, named)

    def test_unset_password_variable(self, folder: Path, args: tuple[str, ...]) -> None:
        """database.password_env names an unset variable: exit 2, the variable named."""
        config = folder / "config.toml"
        config.write_text(WITH_DB_PASSWORD)
        result = _invoke(config, args)
        _assert_one_line_error(result, 2, "INTAKE_DB_PASSWORD is not set")


class TestCheckNamesWhatItRead:
    def test_check_reports_database_and_config(self, folder: Path, db_url: str) -> None:
        """check names the config file it read and the database, and says the schema is current."""
        config = folder / "config.toml"
        config.write_text(GOOD.replace("{url}", db_url))
        assert _invoke(config, ("poll",)).exit_code == 0
        result = _invoke(config, ("check",))
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        assert lines[0] == f"Configuration: OK (read {config})"
        assert lines[1].startswith("Database: OK (") and f"schema {db.HEAD_REVISION} is current" in lines[1]

    def test_check_fails_on_stale_schema(self, folder: Path, db_url: str) -> None:
        """check says FAILED for an old schema and what to run."""
        _stale_schema(db_url)
        config = folder / "config.toml"
        config.write_text(GOOD.replace("{url}", db_url))
        result = _invoke(config, ("check",))
        assert result.exit_code == 1
        assert "Database: FAILED" in result.output and "intake db upgrade" in result.output

    def test_check_with_unset_database_password(self, folder: Path) -> None:
        """check reports the unset database password variable by name."""
        config = folder / "config.toml"
        config.write_text(WITH_DB_PASSWORD)
        result = _invoke(config, ("check",))
        assert result.exit_code == 1
        assert "Database: FAILED - INTAKE_DB_PASSWORD is not set" in result.output


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("digest", "--send"), "[smtp]: sending the digest needs an [smtp] section"),
        (("auth", "status"), "[oauth2]: there is no [oauth2] section"),
        (("auth", "login"), "[oauth2]: there is no [oauth2] section"),
    ],
)
def test_missing_section_is_a_config_error(folder: Path, args: tuple[str, ...], named: str) -> None:
    """A command needing a section the file lacks: exit 2, one line, no usage text."""
    config = folder / "config.toml"
    config.write_text(GOOD.replace("{url}", f"sqlite:///{folder / 'intake.db'}"))
    _assert_one_line_error(_invoke(config, args), 2, named)


class TestVerbose:
    def test_traceback_only_with_v(self, folder: Path) -> None:
        """-v adds the traceback after the same one-line error; without it there is none."""
        config = folder / "config.toml"
        config.write_text(GOOD.replace("{url}", "postgresql://intake@127.0.0.1:9/intake"))
        quiet = _invoke(config, ("list",))
        assert "Traceback" not in quiet.output
        loud = CliRunner().invoke(cli, ["-v", "--config", str(config), "list"])
        assert loud.exit_code == 1
        assert "Traceback" in loud.output and "database.url" in loud.output.splitlines()[-1]

    def test_v_shows_intake_progress_not_alembic(self, folder: Path) -> None:
        """-v shows intake's own events with their fields; Alembic's chatter stays out."""
        config = folder / "config.toml"
        config.write_text(GOOD.replace("{url}", f"sqlite:///{folder / 'intake.db'}"))
        result = CliRunner().invoke(cli, ["-v", "--config", str(config), "poll"])
        assert result.exit_code == 0, result.output
        assert "alembic" not in result.output.lower()
        assert " INFO intake." in result.output


class TestSecretsOnlyWhereUsed:
    SMTP = (
        '\n[smtp]\nhost = "127.0.0.1"\nport = 9\nfrom = "a@example.org"\n'
        'username = "a@example.org"\n'
    )

    def test_read_only_commands_need_no_smtp_password(self, folder: Path) -> None:
        """list, show, status and check run with the SMTP password variable unset."""
        config = folder / "config.toml"
        config.write_text(GOOD.replace("{url}", "sqlite:///intake.db") + self.SMTP)
        assert _invoke(config, ("poll", "--no-ack")).exit_code == 0
        for args in (("list",), ("show", "KIL-00001"), ("status",), ("export",)):
            result = _invoke(config, args)
            assert result.exit_code == 0, (args, result.output)
        result = _invoke(config, ("check",))
        assert "SMTP: FAILED - INTAKE_SMTP_PASSWORD is not set" in result.output

    def test_poll_with_acks_names_the_unset_variable(self, folder: Path) -> None:
        """poll, which will send acknowledgements, names the unset variable up front."""
        config = folder / "config.toml"
        config.write_text(GOOD.replace("{url}", "sqlite:///intake.db") + self.SMTP)
        result = _invoke(config, ("poll",))
        _assert_one_line_error(result, 2, "INTAKE_SMTP_PASSWORD is not set")

    def test_imap_password_unset_is_named(self, folder: Path, dovecot) -> None:
        """An unset IMAP password variable is named, not reported as a refused login."""
        config = folder / "config.toml"
        config.write_text(
            GOOD.replace("{url}", "sqlite:///intake.db").replace(
                '[maildir]\npath = "inbox"',
                f'[imap]\nhost = "{dovecot.host}"\nport = {dovecot.port}\nsecurity = "none"\n'
                f'username = "{dovecot.user}"',
            )
        )
        result = _invoke(config, ("poll",))
        _assert_one_line_error(result, 2, "INTAKE_IMAP_PASSWORD is not set: imap.password_env")
        check = _invoke(config, ("check",))
        assert "IMAP: FAILED - INTAKE_IMAP_PASSWORD is not set" in check.output
        assert "refused" not in check.output


class TestPathsFromTheConfigFile:
    def test_list_from_another_folder_reads_the_same_database(
        self,
        folder: Path,
        tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Run from elsewhere, a relative SQLite path still means the file next to the config."""
        config = folder / "config.toml"
        config.write_text(GOOD.replace("{url}", "sqlite:///intake.db"))
        monkeypatch.chdir(folder)
        assert _invoke(config, ("poll",)).exit_code == 0
        elsewhere = tmp_path_factory.mktemp("elsewhere")
        monkeypatch.chdir(elsewhere)
        listing = _invoke(config, ("list",))
        assert listing.exit_code == 0 and listing.output.count("KIL-000") == 6
        assert not (elsewhere / "intake.db").exists()
        status = _invoke(config, ("status",))
        assert f"Database: SQLite file {folder / 'intake.db'}" in status.output

    def test_read_only_command_does_not_create_a_database(self, folder: Path) -> None:
        """list on a database file that is not there says so (exit 1), and creates nothing."""
        config = folder / "config.toml"
        config.write_text(GOOD.replace("{url}", "sqlite:///nothing-here.db"))
        result = _invoke(config, ("list",))
        _assert_one_line_error(result, 1, f"no database at {folder / 'nothing-here.db'}")
        assert not (folder / "nothing-here.db").exists()
