"""``intake users`` and ``intake web`` from the command line, and the [web] settings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from intake.cli import cli
from intake.config import parse_settings
from intake.errors import ConfigError
from intake.web.auth import check_password
from store import users as user_store
from store.db import make_engine, make_session_factory
from tests.conftest import write_config
from tests.web.test_browser import _free_port

PASSWORD = "a long enough password"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, "\n[web]\nport = 8099\n")


def run(config: Path, *args: str, stdin: str | None = None, code: int = 0) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config), *args], input=stdin)
    assert result.exit_code == code, result.output
    return result.output


def _user(config: Path, email: str) -> user_store.User | None:
    engine = make_engine(f"sqlite:///{config.parent / 'intake.db'}")
    with make_session_factory(engine)() as session:
        found = user_store.find_user(session, email)
    engine.dispose()
    return found


class TestUsers:
    def test_add_list_reset_remove(self, config: Path) -> None:
        """An account is added with an argon2 hash, listed, reset (ending sessions), removed."""
        assert "no accounts yet" in run(config, "users", "list")
        out = run(
            config,
            "users",
            "add",
            "Ann@Example.org",
            "--role",
            "admin",
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
        assert "added ann@example.org (admin)" in out
        user = _user(config, "ann@example.org")
        assert user is not None and user.password_hash.startswith("$argon2id$")
        assert check_password(user, PASSWORD) and not check_password(user, "wrong one")
        assert "ann@example.org" in run(config, "users", "list")
        run(
            config,
            "users",
            "reset",
            "ann@example.org",
            "--password-stdin",
            stdin="another long password\n",
        )
        reset = _user(config, "ann@example.org")
        assert reset is not None and reset.session_epoch == 1
        assert check_password(reset, "another long password")
        run(config, "users", "remove", "ann@example.org")
        assert _user(config, "ann@example.org") is None

    def test_prompted_password(self, config: Path) -> None:
        """Without --password-stdin the password is asked for twice, hidden."""
        run(config, "users", "add", "bo@example.org", stdin=f"{PASSWORD}\n{PASSWORD}\n")
        user = _user(config, "bo@example.org")
        assert user is not None and user.role == "staff"

    def test_mistakes_are_one_line(self, config: Path) -> None:
        """Short passwords, duplicates and unknown accounts say what to do, no traceback."""
        out = run(
            config, "users", "add", "c@example.org", "--password-stdin", stdin="short\n", code=2
        )
        assert "at least 12 characters" in out
        run(config, "users", "add", "c@example.org", "--password-stdin", stdin=PASSWORD + "\n")
        out = run(
            config,
            "users",
            "add",
            "C@example.org",
            "--password-stdin",
            stdin=PASSWORD + "\n",
            code=1,
        )
        assert "already has an account" in out
        out = run(config, "users", "remove", "nobody@example.org", code=1)
        assert "no account for nobody@example.org" in out
        out = run(
            config,
            "users",
            "add",
            "not-an-address",
            "--password-stdin",
            stdin=PASSWORD + "\n",
            code=2,
        )
        assert "not an email address" in out


def test_intake_web_serves(config: Path, tmp_path: Path) -> None:
    """`intake web --port` serves /healthz with uvicorn, and stops on SIGTERM."""
    port = _free_port()
    intake = Path(sys.executable).with_name("intake")
    log = (tmp_path / "web.log").open("wb")
    process = subprocess.Popen(
        [str(intake), "--config", str(config), "web", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "INTAKE_WEB_SECRET_KEY": "k" * 40},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200 and r.read() == b"ok"
                    break
            except OSError:
                assert process.poll() is None, (tmp_path / "web.log").read_text()
                assert time.monotonic() < deadline, "intake web did not start"
                time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/submissions", timeout=5) as r:
            assert r.url == f"http://127.0.0.1:{port}/login?next=%2Fsubmissions"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)  # uvicorn shuts down, then re-raises the signal (exit -15)
        log.close()
    output = (tmp_path / "web.log").read_text()
    assert "Staff web view on http://127.0.0.1:" in output
    assert "Finished server process" in output


BASE = {
    "consultation": {"name": "x", "deadline": "2018-07-27T23:59:59"},
    "maildir": {"path": "/nonexistent"},
}


class TestWebSettings:
    def _parse(self, web: dict[str, object], env: dict[str, str] | None = None):
        import datetime as dt

        data = {**BASE, "web": web}
        data["consultation"] = {"name": "x", "deadline": dt.datetime(2018, 7, 27, 23, 59, 59)}
        return parse_settings(data, env or {}).web

    def test_defaults(self) -> None:
        web = self._parse({})
        assert (web.host, web.port, web.secret_key) == ("127.0.0.1", 8080, "")

    def test_key_from_environment(self) -> None:
        web = self._parse({"secret_key_env": "MY_KEY"}, {"MY_KEY": "s" * 48})
        assert web.secret_key == "s" * 48 and "s" * 48 not in repr(web)

    @pytest.mark.parametrize(
        ("web", "env", "message"),
        [
            ({"port": 0}, {}, "web.port"),
            ({"secure_cookies": "sometimes"}, {}, "web.secure_cookies"),
            ({"trusted_user_header": "X User"}, {}, "web.trusted_user_header"),
            ({"colour": "red"}, {}, "web.colour: unknown key"),
            ({"secret_key_env": "K"}, {"K": "short"}, "shorter than 32"),
        ],
    )
    def test_errors_name_the_key(
        self, web: dict[str, object], env: dict[str, str], message: str
    ) -> None:
        with pytest.raises(ConfigError, match=message):
            self._parse(web, env)
