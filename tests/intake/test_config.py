"""Configuration: validated once, every error names the key, secrets from the environment."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Any

import pytest

from intake.config import find_config_path, load_settings, parse_settings
from intake.errors import ConfigError
from tests.conftest import ROOT

BASE = """
[consultation]
name = "Keep it Local"
deadline = 2018-07-27T23:59:59
reference_prefix = "KIL"

[imap]
host = "imap.example.org"
username = "evidence@example.org"
"""


def _parse(text: str, env: dict[str, str] | None = None) -> Any:
    return parse_settings(tomllib.loads(text), env or {})


class TestValid:
    def test_defaults(self) -> None:
        """A minimal file gets the documented defaults."""
        settings = _parse(BASE)
        assert settings.consultation.timezone == "Europe/London"
        assert settings.consultation.grace_minutes == 0
        assert settings.database.url == "sqlite:///intake.db"
        assert settings.imap.folder == "INBOX"
        assert settings.imap.security == "ssl" and settings.imap.effective_port == 993
        assert settings.smtp is None and not settings.acks_on

    def test_secret_from_environment_only(self) -> None:
        """The password comes from the named variable and never shows in repr."""
        settings = _parse(BASE, {"INTAKE_IMAP_PASSWORD": "s3cret-pw"})
        assert settings.imap.password == "s3cret-pw"
        assert "s3cret-pw" not in repr(settings)

    def test_example_config_is_valid(self) -> None:
        """config.example.toml, as shipped, loads."""
        settings = load_settings(ROOT / "config.example.toml", {})
        assert settings.consultation.deadline == dt.datetime(2018, 7, 27, 23, 59, 59)
        # Microsoft 365 signs in with OAuth2 on both connections (passwords are off there).
        assert settings.imap.host == "outlook.office365.com" and settings.imap.auth == "oauth2"
        assert settings.smtp.auth == "oauth2" and settings.oauth2.provider == "microsoft"

    def test_example_gmail_block_is_valid(self) -> None:
        """The commented Gmail alternative in config.example.toml loads when uncommented."""
        text = (ROOT / "config.example.toml").read_text()
        block = "# [imap]" + text.split("# --- Gmail", 1)[1].split("# [imap]", 1)[1]
        gmail_lines = []
        for line in block.splitlines():
            if not line.startswith("#"):
                break
            gmail_lines.append(line[2:] if line.startswith("# ") else "")
        gmail = tomllib.loads("\n".join(gmail_lines))
        document = tomllib.loads(text)
        document.update(gmail)
        settings = parse_settings(document, {"INTAKE_TOKEN_KEY": "A" * 43 + "="}, base=ROOT)
        assert settings.imap.host == "imap.gmail.com" and settings.imap.auth == "oauth2"
        assert settings.smtp.host == "smtp.gmail.com" and settings.smtp.auth == "oauth2"
        assert settings.oauth2.provider == "google" and settings.oauth2.flow == "auth_code"

    def test_example_questions(self) -> None:
        """The example ships the call's four questions, a to d, with keywords and examples."""
        settings = load_settings(ROOT / "config.example.toml", {"INTAKE_SMTP_PASSWORD": "x"})
        assert [q.key for q in settings.questions] == ["a", "b", "c", "d"]
        assert all(len(q.keywords) >= 20 and len(q.examples) >= 4 for q in settings.questions)
        assert settings.analysis.threshold == 0.52 and settings.analysis.model_path is None

    def test_frozen(self) -> None:
        """Settings cannot be changed after loading."""
        settings = _parse(BASE)
        with pytest.raises(AttributeError):
            settings.consultation.name = "x"


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("[imap2]\nx = 1", "[imap2]"),
        ("[database]\nurll = 'x'", "database.urll"),
        ("[limits]\nparse_timeout = 3", "limits.parse_timeout"),
        ("[limits]\nparse_timeout_s = 'fast'", "limits.parse_timeout_s"),
        ("[limits]\nparse_timeout_s = 0", "limits.parse_timeout_s"),
        ("[smtp]\nhost = 'h'\nfrom = 'a@b'\nsecurity = 'tls'", "smtp.security"),
        ("[maildir]\npath = 'x'", "[imap] or [maildir]"),
        ("[digest]\nsend_at = 'eight'", "digest.send_at"),
        ("[[questions]]\ntitle = 'T'", "questions[1].key"),
        ("[[questions]]\nkey = 'a'\ntitle = 'T'\nkeyword = ['x']", "questions[1].keyword"),
        ("[[questions]]\nkey = 'a b'\ntitle = 'T'", "questions[1].key"),
        (
            "[[questions]]\nkey = 'a'\ntitle = 'T'\n[[questions]]\nkey = 'a'\ntitle = 'U'",
            "questions[2].key",
        ),
        ("[[questions]]\nkey = 'a'\ntitle = 'T'\nexamples = 'one'", "questions[1].examples"),
        ("[analysis]\nthreshold = 1.5", "analysis.threshold"),
        ("[analysis]\nmodel_path = '/nonexistent/model'", "analysis.model_path"),
    ],
)
def test_errors_name_the_key(extra: str, key: str) -> None:
    """Each mistake is an error naming the key (unknown keys never fall back silently)."""
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        _parse(BASE + "\n" + extra)


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("deadline = 2018-07-27T23:59:59", 'deadline = "27 July"', "consultation.deadline"),
        (
            "deadline = 2018-07-27T23:59:59",
            "deadline = 2018-07-27T23:59:59Z",
            "consultation.deadline",
        ),
        ('reference_prefix = "KIL"', 'reference_prefix = "K-I L"', "consultation.reference_prefix"),
        (
            'name = "Keep it Local"',
            'timezone = "Mars/Olympus"\nname = "x"',
            "consultation.timezone",
        ),
        ('name = "Keep it Local"\n', "", "consultation.name"),
    ],
)
def test_consultation_errors(old: str, new: str, key: str) -> None:
    """Bad deadline, prefix or zone are named."""
    with pytest.raises(ConfigError, match=key):
        _parse(BASE.replace(old, new))


def test_date_deadline_means_end_of_day() -> None:
    """A bare date is read as the end of that day."""
    settings = _parse(BASE.replace("2018-07-27T23:59:59", "2018-07-27"))
    assert settings.consultation.deadline == dt.datetime(2018, 7, 27, 23, 59, 59, 999999)


def test_find_config_path_order(tmp_path: Path) -> None:
    """--config beats $INTAKE_CONFIG beats ./config.toml."""
    assert find_config_path("a.toml", {"INTAKE_CONFIG": "b.toml"}) == Path("a.toml")
    assert find_config_path(None, {"INTAKE_CONFIG": "b.toml"}) == Path("b.toml")
    assert find_config_path(None, {}) == Path("config.toml")


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    """A missing file points at config.example.toml."""
    with pytest.raises(ConfigError, match="config.example.toml"):
        load_settings(tmp_path / "nope.toml", {})


def test_bad_toml(tmp_path: Path) -> None:
    """A syntax error is reported with the file's name."""
    path = tmp_path / "c.toml"
    path.write_text("[consultation\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path, {})


def test_database_password_from_environment() -> None:
    """The database password comes from the environment and stays out of repr."""
    text = (
        BASE
        + '\n[database]\nurl = "postgresql://intake@db.example.org/intake"\npassword_env = "DB_PW"\n'
    )
    settings = _parse(text, {"DB_PW": "pg-s3cret"})
    assert settings.database.connect_url == "postgresql://intake:pg-s3cret@db.example.org/intake"
    assert "pg-s3cret" not in repr(settings)
    unset = _parse(text, {})  # loads: commands that never open the database need no password
    with pytest.raises(ConfigError, match="DB_PW is not set: database.password_env"):
        unset.database.connect_url  # noqa: B018


class TestSecretsWhereUsed:
    def test_unset_smtp_password_is_named_when_needed(self) -> None:
        """An unset SMTP password variable does not stop loading; using SMTP names it."""
        settings = _parse(BASE + "\n[smtp]\nhost = 'h'\nfrom = 'a@b'\nusername = 'u'\n")
        with pytest.raises(ConfigError, match="INTAKE_SMTP_PASSWORD is not set: smtp.password_env"):
            settings.smtp.require_secrets()

    def test_unset_imap_password_is_named_when_needed(self) -> None:
        """An unset IMAP password variable is named as unset, not as a refused login."""
        settings = _parse(BASE)
        with pytest.raises(ConfigError, match="INTAKE_IMAP_PASSWORD is not set: imap.password_env"):
            settings.imap.require_secrets()
        _parse(BASE, {"INTAKE_IMAP_PASSWORD": "pw"}).imap.require_secrets()

    def test_no_inbox_is_allowed_until_polling(self) -> None:
        """A file without [imap] or [maildir] loads (for `intake import`); polling names it."""
        from intake.config import require_inbox

        settings = _parse(BASE.split("[imap]")[0])
        assert settings.imap is None and settings.maildir is None
        with pytest.raises(ConfigError, match=r"\[imap\] or \[maildir\]: no inbox"):
            require_inbox(settings)


class TestPathsFromTheConfigFile:
    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("sqlite:///intake.db", "sqlite:///{base}/intake.db"),
            ("sqlite:///data/intake.db", "sqlite:///{base}/data/intake.db"),
            ("sqlite:////var/lib/intake/intake.db", "sqlite:////var/lib/intake/intake.db"),
            ("sqlite://", "sqlite://"),
            ("postgresql://intake@db/intake", "postgresql://intake@db/intake"),
        ],
    )
    def test_sqlite_path_is_relative_to_the_config_file(
        self, tmp_path: Path, url: str, expected: str
    ) -> None:
        """A relative SQLite file is read next to the config file, like maildir.path."""
        config = tmp_path / "etc" / "config.toml"
        config.parent.mkdir()
        config.write_text(BASE + f'\n[database]\nurl = "{url}"\n')
        settings = load_settings(config, {})
        assert settings.database.url == expected.format(base=config.parent)

    def test_default_database_is_next_to_the_config_file(self, tmp_path: Path) -> None:
        """Without a [database] section the file intake.db sits next to the config."""
        config = tmp_path / "config.toml"
        config.write_text(BASE)
        assert load_settings(config, {}).database.url == f"sqlite:///{tmp_path}/intake.db"

    def test_unreadable_url_names_the_key(self) -> None:
        """A URL SQLAlchemy cannot parse is a configuration error naming database.url."""
        with pytest.raises(ConfigError, match="database.url"):
            _parse(BASE + '\n[database]\nurl = "not a url"\n')
