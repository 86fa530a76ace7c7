"""OAuth2 sign-in: settings, token sources against a loopback token endpoint, the
encrypted refresh-token store, XOAUTH2 against the test Dovecot and an SMTP server,
`intake check`, `intake auth login`, and failure messages people can act on."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from intake.app import App
from intake.cli import cli
from intake.config import ImapSettings, Settings, SmtpSettings, parse_settings
from intake.errors import ConfigError, DeliveryError, MailboxAuthError
from intake.mail import oauth
from intake.mail.smtp import Mailer
from intake.staff.daily import build_digest
from intake.staff.digest import needs_attention
from intake.worker import holder_id, run_cycle
from store import db
from store.models import OAuthToken, PollRun, Submission
from tests.support import Dovecot
from tests.support.token_server import TokenServer
from tests.support.xoauth2_smtp import XOAuth2SmtpServer

CLIENT = "11111111-2222-3333-4444-555555555555"
PUBLIC = "99999999-8888-7777-6666-555555555555"
SECRET = "client-secret-Zq8~do-not-log"
KEY = Fernet.generate_key().decode()
ACCESS = "at-fixed-for-dovecot-Xy7"
MAILBOX = "consultation"
ENV = {"TEST_CLIENT_SECRET": SECRET, "INTAKE_TOKEN_KEY": KEY, "TEST_IMAP_PASSWORD": "x"}


# --- helpers ------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(json.dumps(v) for v in value) + "]"
    return json.dumps(str(value))


def _section(name: str, values: dict[str, Any]) -> str:
    body = "\n".join(f"{k} = {_toml_value(v)}" for k, v in values.items() if v is not None)
    return f"[{name}]\n{body}\n"


def oauth2_values(server: TokenServer | None, **over: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "provider": "microsoft",
        "tenant_id": "contoso-tenant",
        "client_id": CLIENT,
        "client_secret_env": "TEST_CLIENT_SECRET",
        "timeout_s": 5,
    }
    if server is not None:
        values.update(
            token_url=server.token_url,
            device_code_url=server.device_url,
            authorize_url=server.authorize_url,
        )
    values.update(over)
    return values


def config_text(
    db_url: str,
    *,
    imap: dict[str, Any] | None = None,
    smtp: dict[str, Any] | None = None,
    oauth2: dict[str, Any] | None = None,
) -> str:
    parts = [
        _section(
            "consultation",
            {"name": "Keep it Local", "deadline": "X", "reference_prefix": "KIL"},
        ).replace('"X"', "2018-07-27T23:59:59"),
        _section("database", {"url": db_url}),
        _section("limits", {"parse_timeout_s": 20}),
    ]
    if imap is not None:
        parts.append(_section("imap", imap))
    else:
        parts.append(_section("maildir", {"path": "/nonexistent"}))
    if smtp is not None:
        parts.append(_section("smtp", smtp))
    if oauth2 is not None:
        parts.append(_section("oauth2", oauth2))
    return "\n".join(parts)


def settings(db_url: str, env: dict[str, str] | None = None, **sections: Any) -> Settings:
    import tomllib

    return parse_settings(
        tomllib.loads(config_text(db_url, **sections)), ENV if env is None else env
    )


def imap_values(port: int = 1, **over: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "username": MAILBOX,
        "password_env": "TEST_IMAP_PASSWORD",
        "auth": "oauth2",
        "timeout_s": 10,
    }
    values.update(over)
    return values


def smtp_values(port: int, **over: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "from": "keepitlocal@example.org",
        "username": MAILBOX,
        "auth": "oauth2",
        "timeout_s": 5,
    }
    values.update(over)
    return values


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[TokenServer]:
    with TokenServer(clients={CLIENT: SECRET}, public_clients={PUBLIC}) as srv:
        yield srv


@pytest.fixture
def database(db_url: str) -> Iterator[str]:
    """``db_url`` with the schema created."""
    engine = db.open_database(db_url)
    engine.dispose()
    yield db_url


def store_for(db_url: str, key: str = KEY) -> tuple[oauth.TokenStore, Any]:
    engine = db.make_engine(db_url)
    return oauth.TokenStore(db.make_session_factory(engine), key), engine


@pytest.fixture(scope="session")
def oauth_dovecot_server() -> Iterator[Dovecot]:
    with Dovecot(oauth2_token=ACCESS) as dovecot:
        yield dovecot


@pytest.fixture
def oauth_dovecot(oauth_dovecot_server: Dovecot) -> Dovecot:
    oauth_dovecot_server.clear()
    return oauth_dovecot_server


@pytest.fixture
def smtp_server() -> Iterator[XOAuth2SmtpServer]:
    with XOAuth2SmtpServer(username=MAILBOX, token=ACCESS) as srv:
        yield srv


def message(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Respondent {n} <respondent{n}@example.org>"
    msg["To"] = "keepitlocal@example.org"
    msg["Subject"] = f"Response {n}"
    msg["Message-ID"] = f"<oauth-{n}@example.org>"
    msg["Date"] = "Fri, 27 Jul 2018 20:00:00 +0100"
    msg.set_content(f"Body of response {n}.")
    return msg.as_bytes()


# --- configuration ------------------------------------------------------------------------


class TestSettings:
    def test_defaults_per_provider(self, sqlite_url: str) -> None:
        ms = settings(sqlite_url, imap=imap_values(), oauth2=oauth2_values(None))
        assert ms.oauth2 is not None and ms.oauth2.flow == "client_credentials"
        assert ms.imap is not None and ms.imap.oauth2 == ms.oauth2
        assert ms.oauth2.account == MAILBOX and ms.oauth2.client_secret == SECRET
        assert oauth.default_scopes(ms.oauth2) == ("https://outlook.office365.com/.default",)
        assert oauth.endpoints(ms.oauth2).token == (
            "https://login.microsoftonline.com/contoso-tenant/oauth2/v2.0/token"
        )
        delegated = settings(
            sqlite_url, imap=imap_values(), oauth2=oauth2_values(None, flow="device")
        ).oauth2
        assert delegated is not None and "offline_access" in oauth.default_scopes(delegated)
        google = settings(
            sqlite_url, imap=imap_values(), oauth2=oauth2_values(None, provider="google")
        ).oauth2
        assert google is not None and google.flow == "auth_code"
        assert oauth.default_scopes(google) == ("https://mail.google.com/",)
        assert oauth.endpoints(google).token == "https://oauth2.googleapis.com/token"
        sovereign = settings(
            sqlite_url,
            imap=imap_values(),
            oauth2=oauth2_values(None, authority="https://login.microsoftonline.us"),
        ).oauth2
        assert sovereign is not None
        assert oauth.endpoints(sovereign).token.startswith("https://login.microsoftonline.us/")

    def test_password_is_still_the_default(self, sqlite_url: str) -> None:
        s = settings(sqlite_url, imap=imap_values(auth=None))
        assert s.imap is not None and s.imap.auth == "password" and s.oauth2 is None

    @pytest.mark.parametrize(
        ("sections", "env", "names"),
        [
            ({"imap": imap_values()}, ENV, ["imap.auth", "[oauth2]"]),
            ({"imap": imap_values(auth="token")}, ENV, ["imap.auth", "password, oauth2"]),
            (
                {"imap": imap_values(), "oauth2": oauth2_values(None, provider="yahoo")},
                ENV,
                ["oauth2.provider"],
            ),
            (
                {
                    "imap": imap_values(),
                    "oauth2": oauth2_values(None, flow="device", provider="google"),
                },
                ENV,
                ["oauth2.flow", "auth_code"],
            ),
            (
                {"imap": imap_values(), "oauth2": oauth2_values(None, tenant_id=None)},
                ENV,
                ["oauth2.tenant_id"],
            ),
            (
                {"imap": imap_values(), "oauth2": oauth2_values(None, client_id=None)},
                ENV,
                ["oauth2.client_id"],
            ),
            (
                {"imap": imap_values(), "oauth2": oauth2_values(None, flow="device")},
                {"INTAKE_TOKEN_KEY": "not-a-key"},
                ["oauth2.encryption_key_env", "not hold a valid key"],
            ),
            (
                {"imap": imap_values(), "oauth2": {"provider": "command"}},
                ENV,
                ["oauth2.token_command"],
            ),
            (
                {"imap": imap_values(), "oauth2": oauth2_values(None, colour="blue")},
                ENV,
                ["oauth2.colour", "unknown key"],
            ),
            (
                {
                    "imap": imap_values(),
                    "smtp": smtp_values(25, username=None),
                    "oauth2": oauth2_values(None),
                },
                ENV,
                ["smtp.username"],
            ),
            (
                {
                    "imap": imap_values(),
                    "smtp": smtp_values(25, username="other@example.org"),
                    "oauth2": oauth2_values(None, flow="device"),
                },
                ENV,
                ["smtp.username", "same mailbox"],
            ),
            (
                {
                    "imap": imap_values(),
                    "oauth2": oauth2_values(None, certificate_path="/nonexistent.pem"),
                },
                ENV,
                ["oauth2.certificate_path", "no such file"],
            ),
        ],
    )
    def test_errors_name_the_key(
        self, sqlite_url: str, sections: dict[str, Any], env: dict[str, str], names: list[str]
    ) -> None:
        with pytest.raises(ConfigError) as caught:
            settings(sqlite_url, env=env, **sections)
        for name in names:
            assert name in str(caught.value)

    @pytest.mark.parametrize(
        ("sections", "env", "names"),
        [
            (
                {"imap": imap_values(), "oauth2": oauth2_values(None)},
                {},
                ["TEST_CLIENT_SECRET is not set", "oauth2.client_secret_env"],
            ),
            (
                {"imap": imap_values(), "oauth2": oauth2_values(None, flow="device")},
                {"TEST_CLIENT_SECRET": SECRET},
                ["INTAKE_TOKEN_KEY is not set", "oauth2.encryption_key_env", "intake auth new-key"],
            ),
        ],
    )
    def test_unset_secrets_are_named_when_needed(
        self, sqlite_url: str, sections: dict[str, Any], env: dict[str, str], names: list[str]
    ) -> None:
        """An unset secret does not stop loading (list, show need none); a token source names it."""
        s = settings(sqlite_url, env=env, **sections)
        assert s.oauth2 is not None
        with pytest.raises(ConfigError) as caught:
            oauth.TokenSources().source_for(s.oauth2)
        for name in names:
            assert name in str(caught.value)

    def test_smtp_oauth2_needs_no_password(self, sqlite_url: str) -> None:
        s = settings(sqlite_url, smtp=smtp_values(25), oauth2=oauth2_values(None))
        assert s.smtp is not None and s.smtp.auth == "oauth2" and s.smtp.password == ""

    def test_secrets_are_not_in_reprs(self, sqlite_url: str) -> None:
        s = settings(
            sqlite_url,
            imap=imap_values(),
            smtp=smtp_values(25),
            oauth2=oauth2_values(None, flow="device"),
        )
        assert s.oauth2 is not None
        text = repr(s) + repr(s.oauth2) + repr(s.imap) + repr(s.smtp)
        assert SECRET not in text and KEY not in text
        assert repr(oauth.OAuth2TokenSource(s.oauth2, oauth.TokenStore(None, KEY))) == (  # type: ignore[arg-type]
            f"OAuth2TokenSource(Microsoft sign-in of {MAILBOX} (device flow, app {CLIENT}))"
        )


# --- client credentials and the access-token cache -----------------------------------------


def app_only(sqlite_url: str, server: TokenServer, **over: Any) -> Any:
    s = settings(sqlite_url, imap=imap_values(), oauth2=oauth2_values(server, **over))
    assert s.oauth2 is not None
    return s.oauth2


class TestClientCredentials:
    def test_token_is_cached_until_a_minute_before_expiry(
        self, sqlite_url: str, server: TokenServer
    ) -> None:
        clock = Clock()
        source = oauth.OAuth2TokenSource(app_only(sqlite_url, server), clock=clock)
        first = source.access_token()
        assert source.access_token() == first
        assert server.grants() == ["client_credentials"]
        form = server.requests[0]
        assert form["client_secret"] == SECRET
        assert form["scope"] == "https://outlook.office365.com/.default"
        clock.now += 3600 - 61
        assert source.access_token() == first
        clock.now += 2  # within the last minute: renew
        second = source.access_token()
        assert second != first and server.grants() == ["client_credentials"] * 2

    def test_invalidate_fetches_a_new_one(self, sqlite_url: str, server: TokenServer) -> None:
        source = oauth.OAuth2TokenSource(app_only(sqlite_url, server))
        first = source.access_token()
        source.invalidate()
        assert source.access_token() != first

    def test_source_for_shares_one_cache(self, sqlite_url: str, server: TokenServer) -> None:
        o = app_only(sqlite_url, server)
        sources = oauth.TokenSources()
        assert sources.source_for(o) is sources.source_for(o)
        sources.source_for(o).access_token()
        sources.source_for(o).access_token()
        assert len(server.requests) == 1
        sources.close()

    def test_the_app_passes_its_sources_to_imap_and_smtp(
        self, sqlite_url: str, server: TokenServer
    ) -> None:
        """One App, one cache: its inbox and its mailer ask the App's token sources."""
        s = settings(
            sqlite_url, imap=imap_values(), smtp=smtp_values(25), oauth2=oauth2_values(server)
        )
        app, other = App(s), App(s)
        try:
            mailer = app.mailer()
            inbox_factory = app.inbox_factory()
            assert mailer is not None and inbox_factory is not None
            assert mailer.tokens is app.token_sources
            assert inbox_factory().tokens is app.token_sources
            assert s.oauth2 is not None
            assert app.token_sources.source_for(s.oauth2) is not other.token_sources.source_for(
                s.oauth2
            )
        finally:
            app.close()
            other.close()

    def test_certificate_assertion(
        self, sqlite_url: str, server: TokenServer, tmp_path: Path
    ) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intake")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(1)
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        pem = tmp_path / "app.pem"
        pem.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            + cert.public_bytes(serialization.Encoding.PEM)
        )
        server.register_certificate(CLIENT, key.public_key())
        o = settings(
            sqlite_url,
            env={},
            imap=imap_values(),
            oauth2=oauth2_values(server, certificate_path=str(pem)),
        ).oauth2
        assert o is not None
        assert oauth.OAuth2TokenSource(o).access_token().startswith("at-")
        form = server.requests[0]
        assert "client_secret" not in form and form["client_assertion"].count(".") == 2
        # A certificate the app registration does not know is refused, in words.
        server.register_certificate(CLIENT, rsa.generate_private_key(65537, 2048).public_key())
        with pytest.raises(oauth.TokenError, match="invalid_client"):
            oauth.OAuth2TokenSource(o).access_token()

    @pytest.mark.parametrize(
        ("status", "error", "description", "expected"),
        [
            (
                401,
                "invalid_client",
                "AADSTS7000215: Invalid client secret provided.",
                "the client secret is wrong",
            ),
            (
                401,
                "invalid_client",
                "AADSTS7000222: The provided client secret keys are expired.",
                "the client secret has expired",
            ),
            (400, "invalid_request", "AADSTS90002: Tenant 'x' not found.", "oauth2.tenant_id"),
            (
                400,
                "unauthorized_client",
                "AADSTS700016: Application not found in the directory.",
                "oauth2.client_id",
            ),
            (
                400,
                "invalid_grant",
                "AADSTS65001: The user or administrator has not consented.",
                "Grant admin consent",
            ),
            (
                400,
                "invalid_scope",
                "AADSTS70011: The provided value for scope is not valid.",
                "oauth2.scopes",
            ),
            (
                401,
                "invalid_client",
                "",
                "check oauth2.client_id and the client secret in $TEST_CLIENT_SECRET",
            ),
        ],
    )
    def test_token_endpoint_errors_in_plain_words(
        self,
        sqlite_url: str,
        server: TokenServer,
        status: int,
        error: str,
        description: str,
        expected: str,
    ) -> None:
        server.fail_next = (status, error, description)
        with pytest.raises(oauth.TokenError) as caught:
            oauth.OAuth2TokenSource(app_only(sqlite_url, server)).access_token()
        text = str(caught.value)
        assert text.startswith("OAuth2 token request failed: ") and expected in text
        assert caught.value.code == error and SECRET not in text

    def test_wrong_secret_against_the_endpoint(self, sqlite_url: str, server: TokenServer) -> None:
        o = settings(
            sqlite_url,
            env={"TEST_CLIENT_SECRET": "wrong"},
            imap=imap_values(),
            oauth2=oauth2_values(server),
        ).oauth2
        assert o is not None
        with pytest.raises(oauth.TokenError, match="the client secret is wrong"):
            oauth.OAuth2TokenSource(o).access_token()

    def test_unreachable_endpoint(self, sqlite_url: str) -> None:
        with TokenServer() as gone:
            url = gone.token_url
        o = app_only(sqlite_url, None, token_url=url)  # type: ignore[arg-type]
        with pytest.raises(oauth.TokenError, match="cannot reach the token endpoint") as caught:
            oauth.OAuth2TokenSource(o).access_token()
        assert caught.value.code == "unreachable"

    def test_failures_are_logged_once_per_message(
        self, sqlite_url: str, server: TokenServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        source = oauth.OAuth2TokenSource(app_only(sqlite_url, server))
        caplog.set_level(logging.DEBUG, logger="intake.mail.oauth")
        for _ in range(3):
            server.fail_next = (401, "invalid_client", "AADSTS7000222: expired.")
            with pytest.raises(oauth.TokenError):
                source.access_token()
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "has expired" in warnings[0].getMessage()
        source.access_token()  # works again: said once
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 2 and "again" in warnings[1].getMessage()
        assert SECRET not in caplog.text


# --- delegated: refresh tokens, rotation, the encrypted store -------------------------------


def delegated(db_url: str, server: TokenServer, flow: str = "device", **over: Any) -> Any:
    over.setdefault("client_id", PUBLIC)
    s = settings(
        db_url,
        env={"INTAKE_TOKEN_KEY": KEY},
        imap=imap_values(),
        oauth2=oauth2_values(server, flow=flow, client_secret_env="UNSET_SECRET", **over),
    )
    assert s.oauth2 is not None
    return s.oauth2


class TestRefreshTokens:
    def test_rotation_is_saved_at_once(self, database: str, server: TokenServer) -> None:
        o = delegated(database, server)
        store, engine = store_for(database)
        try:
            first = server.seed_refresh_token(PUBLIC)
            store.save(o, first)
            clock = Clock()
            source = oauth.OAuth2TokenSource(o, store, clock=clock)
            source.access_token()
            second = store.load(o)
            assert second is not None and second != first
            assert server.valid_refresh_tokens() == {second}  # the old one is now refused
            assert source.access_token() and server.grants() == ["refresh_token"]
            clock.now += 3600
            source.access_token()
            third = store.load(o)
            assert third not in (first, second) and server.valid_refresh_tokens() == {third}
            with engine.connect() as conn:
                rows = conn.execute(select(OAuthToken.__table__)).all()
            assert len(rows) == 1 and rows[0].account == MAILBOX
        finally:
            engine.dispose()

    def test_encrypted_at_rest(self, database: str, server: TokenServer) -> None:
        o = delegated(database, server)
        store, engine = store_for(database)
        try:
            token = server.seed_refresh_token(PUBLIC)
            store.save(o, token)
            with engine.connect() as conn:
                stored = conn.execute(select(OAuthToken.refresh_token_encrypted)).scalar_one()
            assert token not in stored and token[3:20] not in stored
            assert Fernet(KEY.encode()).decrypt(stored.encode()).decode() == token
            other_key, other_engine = store_for(database, Fernet.generate_key().decode())
            try:
                with pytest.raises(oauth.TokenError, match="cannot be decrypted") as caught:
                    other_key.load(o)
                assert "intake auth login" in str(caught.value)
            finally:
                other_engine.dispose()
        finally:
            engine.dispose()

    def test_revoked_sign_in_says_log_in_again(self, database: str, server: TokenServer) -> None:
        o = delegated(database, server)
        store, engine = store_for(database)
        try:
            store.save(o, server.seed_refresh_token(PUBLIC))
            server.revoke_all()
            with pytest.raises(oauth.TokenError) as caught:
                oauth.OAuth2TokenSource(o, store).access_token()
            text = str(caught.value)
            assert caught.value.code == "invalid_grant"
            assert "expired or was revoked" in text and "run `intake auth login` again" in text
        finally:
            engine.dispose()

    def test_nobody_signed_in(self, database: str, server: TokenServer) -> None:
        o = delegated(database, server)
        store, engine = store_for(database)
        try:
            with pytest.raises(oauth.TokenError, match="nobody has signed in yet") as caught:
                oauth.OAuth2TokenSource(o, store).access_token()
            assert "intake auth login" in str(caught.value) and not server.requests
        finally:
            engine.dispose()

    def test_rotated_by_another_process_meanwhile(self, database: str, server: TokenServer) -> None:
        """A refresh token rotated by another process a moment ago: use the newest once."""
        o = delegated(database, server)
        store, engine = store_for(database)
        try:
            stale = server.seed_refresh_token(PUBLIC)
            store.save(o, stale)
            oauth.OAuth2TokenSource(o, store).access_token()  # "the other process" rotates
            current = store.load(o)
            reads = iter([stale])
            real_load = store.load
            store.load = lambda o: next(reads, None) or real_load(o)  # type: ignore[method-assign]
            assert oauth.OAuth2TokenSource(o, store).access_token()
            assert store.load(o) not in (stale, current)
        finally:
            engine.dispose()

    def test_threads_share_one_refresh(self, database: str, server: TokenServer) -> None:
        o = delegated(database, server)
        store, engine = store_for(database)
        try:
            store.save(o, server.seed_refresh_token(PUBLIC))
            source = oauth.OAuth2TokenSource(o, store)
            tokens: list[str] = []
            threads = [
                threading.Thread(target=lambda: tokens.append(source.access_token()))
                for _ in range(5)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert len(set(tokens)) == 1 and server.grants() == ["refresh_token"]
        finally:
            engine.dispose()


class TestSignIn:
    def test_device_flow_with_the_cli(
        self, database: str, server: TokenServer, tmp_path: Path
    ) -> None:
        config = tmp_path / "config.toml"
        config.write_text(
            config_text(
                database,
                imap=imap_values(),
                oauth2=oauth2_values(
                    server, flow="device", client_id=PUBLIC, client_secret_env="UNSET"
                ),
            )
        )
        env = {"INTAKE_TOKEN_KEY": KEY}
        result = CliRunner().invoke(cli, ["--config", str(config), "auth", "login"], env=env)
        assert result.exit_code == 0, result.output
        assert "enter the code ABCD-EFGH" in result.output and "Signed in" in result.output
        device = "urn:ietf:params:oauth:grant-type:device_code"
        assert server.grants() == [device, device, device]  # pending twice, then signed in
        status = CliRunner().invoke(cli, ["--config", str(config), "auth", "status"], env=env)
        assert status.exit_code == 0 and "stored" in status.output
        o = delegated(database, server)
        store, engine = store_for(database)
        try:
            assert store.load(o) in server.valid_refresh_tokens()
        finally:
            engine.dispose()
        out = CliRunner().invoke(cli, ["--config", str(config), "auth", "logout"], env=env)
        assert "Deleted" in out.output
        status = CliRunner().invoke(cli, ["--config", str(config), "auth", "status"], env=env)
        assert status.exit_code == 1 and "intake auth login" in status.output

    def test_auth_code_with_pkce(self, database: str, server: TokenServer) -> None:
        o = delegated(database, server, flow="auth_code")
        store, engine = store_for(database)
        try:
            request = oauth.start_authorization(o)
            assert "code_challenge_method=S256" in request.url
            redirect = _follow_once(request.url)
            assert redirect.startswith("http://localhost?code=")
            oauth.finish_authorization(o, store, request, redirect)
            assert store.load(o) in server.valid_refresh_tokens()
            # An address from another sign-in is refused before anything is sent.
            again = oauth.start_authorization(o)
            with pytest.raises(oauth.TokenError, match="different sign-in"):
                oauth.finish_authorization(o, store, again, redirect)
        finally:
            engine.dispose()

    def test_google_asks_for_offline_access(self, sqlite_url: str, server: TokenServer) -> None:
        s = settings(
            sqlite_url,
            imap=imap_values(),
            oauth2=oauth2_values(server, provider="google", tenant_id=None),
        )
        assert s.oauth2 is not None
        url = oauth.start_authorization(s.oauth2).url
        assert "access_type=offline" in url and "prompt=consent" in url
        assert "scope=https%3A%2F%2Fmail.google.com%2F" in url

    def test_new_key_needs_no_configuration(self) -> None:
        result = CliRunner().invoke(cli, ["--config", "/nonexistent.toml", "auth", "new-key"])
        assert result.exit_code == 0
        Fernet(result.output.strip().encode())


def _follow_once(url: str) -> str:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(url, timeout=5)
    except urllib.error.HTTPError as exc:
        location = exc.headers["Location"]
        exc.close()
        return str(location)
    raise AssertionError("no redirect")


# --- provider = "command" ---------------------------------------------------------------------


def command_settings(sqlite_url: str, script: Path, *args: str) -> Any:
    command = " ".join([sys.executable, str(script), *args])
    s = settings(
        sqlite_url, imap=imap_values(), oauth2={"provider": "command", "token_command": command}
    )
    assert s.oauth2 is not None
    return s.oauth2


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "token.py"
    path.write_text(
        "import json, sys\n"
        "mode = sys.argv[1]\n"
        "if mode == 'plain':\n"
        f"    print('warming up'); print({ACCESS!r})\n"
        "elif mode == 'json':\n"
        f"    print(json.dumps({{'access_token': {ACCESS!r}, 'expires_in': 120}}))\n"
        "elif mode == 'fail':\n"
        "    print('AADSTS50173: the grant was revoked; run az login', file=sys.stderr)\n"
        "    sys.exit(3)\n"
        "else:\n"
        "    print('')\n"
    )
    return path


class TestCommand:
    def test_plain_token(self, sqlite_url: str, script: Path) -> None:
        source = oauth.OAuth2TokenSource(command_settings(sqlite_url, script, "plain"))
        assert source.access_token() == ACCESS

    def test_json_token_with_expiry(self, sqlite_url: str, script: Path) -> None:
        clock = Clock()
        source = oauth.OAuth2TokenSource(command_settings(sqlite_url, script, "json"), clock=clock)
        assert source.access_token() == ACCESS
        assert source.expires_at == clock.now + 120

    def test_failing_command(self, sqlite_url: str, script: Path) -> None:
        source = oauth.OAuth2TokenSource(command_settings(sqlite_url, script, "fail"))
        with pytest.raises(oauth.TokenError) as caught:
            source.access_token()
        text = str(caught.value)
        assert "oauth2.token_command" in text and "exit status 3" in text
        assert "run az login" in text

    def test_no_token_printed(self, sqlite_url: str, script: Path) -> None:
        with pytest.raises(oauth.TokenError, match="printed no access token"):
            oauth.OAuth2TokenSource(command_settings(sqlite_url, script, "empty")).access_token()

    def test_missing_program(self, sqlite_url: str) -> None:
        s = settings(
            sqlite_url,
            imap=imap_values(),
            oauth2={"provider": "command", "token_command": "/nonexistent/get-token --x"},
        )
        assert s.oauth2 is not None
        with pytest.raises(oauth.TokenError, match="was not found"):
            oauth.OAuth2TokenSource(s.oauth2).access_token()


# --- XOAUTH2 end to end ----------------------------------------------------------------------


class TestImapXOAuth2:
    def test_poll_with_app_only_token(
        self, oauth_dovecot: Dovecot, db_url: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        oauth_dovecot.append(message(1))
        oauth_dovecot.append(message(2))
        with TokenServer(clients={CLIENT: SECRET}, access_token=ACCESS) as tokens:
            s = settings(
                db_url,
                imap=imap_values(oauth_dovecot.port, batch_size=5),
                oauth2=oauth2_values(tokens),
            )
            app = App(s)
            try:
                with app.pipeline(acks=False) as pipeline:
                    report = run_cycle(
                        pipeline,
                        app.inbox_factory(),
                        holder=holder_id(),
                        lease_ttl=dt.timedelta(minutes=5),
                    )
                assert report.stored == 2
                with app.pipeline(acks=False) as pipeline:  # the cached token is reused
                    run_cycle(
                        pipeline,
                        app.inbox_factory(),
                        holder=holder_id(),
                        lease_ttl=dt.timedelta(minutes=5),
                    )
                with app.sessions() as session:
                    assert len(session.scalars(select(Submission)).all()) == 2
            finally:
                app.close()
            assert tokens.grants() == ["client_credentials"]
        assert "method=XOAUTH2" in oauth_dovecot.log_text()
        assert ACCESS not in caplog.text and SECRET not in caplog.text

    def test_refused_token_says_what_to_check(self, oauth_dovecot: Dovecot, db_url: str) -> None:
        with TokenServer(clients={CLIENT: SECRET}, access_token="at-not-for-this-mailbox") as t:
            s = settings(db_url, imap=imap_values(oauth_dovecot.port), oauth2=oauth2_values(t))
            app = App(s)
            try:
                with pytest.raises(MailboxAuthError) as caught, app.pipeline(acks=False) as p:
                    run_cycle(
                        p,
                        app.inbox_factory(),
                        holder=holder_id(),
                        lease_ttl=dt.timedelta(minutes=5),
                    )
                text = str(caught.value)
                assert "refused the OAuth2 access token for 'consultation'" in text
                assert "IMAP.AccessAsApp" in text and "AUTHENTICATIONFAILED" in text
                assert "at-not-for-this-mailbox" not in text
                # `intake status` shows the same words for the failed poll.
                with app.sessions() as session:
                    run = session.scalars(select(PollRun)).one()
                    assert run.ok is False and "IMAP.AccessAsApp" in (run.error or "")
                    # ...and the digest's "needs attention" does too.
                    data = build_digest(session, app.settings, dt.datetime.now(dt.UTC), None)
                    assert any("IMAP.AccessAsApp" in line for line in needs_attention(data))
            finally:
                app.close()

    def test_token_failure_becomes_a_mailbox_auth_error(
        self, oauth_dovecot: Dovecot, db_url: str
    ) -> None:
        with TokenServer(clients={CLIENT: "rotated-away"}) as t:
            s = settings(db_url, imap=imap_values(oauth_dovecot.port), oauth2=oauth2_values(t))
            app = App(s)
            try:
                with pytest.raises(MailboxAuthError) as caught:
                    with app.inbox_factory()():  # type: ignore[misc]
                        pass
            finally:
                app.close()
        assert str(caught.value).startswith("cannot sign in to the IMAP server 127.0.0.1:")
        assert "the client secret is wrong" in str(caught.value)

    def test_password_login_still_works(self, oauth_dovecot: Dovecot, db_url: str) -> None:
        s = settings(
            db_url,
            env={"TEST_IMAP_PASSWORD": oauth_dovecot.password},
            imap=imap_values(oauth_dovecot.port, auth="password"),
        )
        app = App(s)
        try:
            with app.inbox_factory()() as inbox:  # type: ignore[misc]
                assert inbox.uidvalidity > 0
        finally:
            app.close()


class TestSmtpXOAuth2:
    def test_send_with_a_token(self, smtp_server: XOAuth2SmtpServer, sqlite_url: str) -> None:
        with TokenServer(clients={CLIENT: SECRET}, access_token=ACCESS) as t:
            s = settings(sqlite_url, smtp=smtp_values(smtp_server.port), oauth2=oauth2_values(t))
            assert s.smtp is not None
            msg = EmailMessage()
            msg["Subject"] = "hello"
            msg.set_content("hi")
            with Mailer(s.smtp).connect() as connection:
                connection.send(msg, ["a@example.org"], "keepitlocal@example.org")
        assert [r.auth_user for r in smtp_server.received] == [MAILBOX]

    def test_basic_auth_disabled(self, smtp_server: XOAuth2SmtpServer, sqlite_url: str) -> None:
        s = settings(
            sqlite_url,
            env={"INTAKE_SMTP_PASSWORD": "pw"},
            smtp=smtp_values(smtp_server.port, auth="password"),
        )
        assert s.smtp is not None
        with pytest.raises(DeliveryError) as caught, Mailer(s.smtp).connect():
            pass
        text = str(caught.value)
        assert "basic authentication is disabled" in text
        assert 'set [smtp] auth = "oauth2"' in text and "5.7.139" in text

    def test_smtp_auth_switched_off(self, smtp_server: XOAuth2SmtpServer, sqlite_url: str) -> None:
        smtp_server.token_reply = (
            "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled "
            "for the Tenant."
        )
        with TokenServer(clients={CLIENT: SECRET}, access_token="at-other") as t:
            s = settings(sqlite_url, smtp=smtp_values(smtp_server.port), oauth2=oauth2_values(t))
            assert s.smtp is not None
            with pytest.raises(DeliveryError) as caught, Mailer(s.smtp).connect():
                pass
        assert "Set-CASMailbox" in str(caught.value) and "SmtpClientAuthenticationDisabled" in str(
            caught.value
        )


class TestExplain:
    """The server texts that cannot be produced by the test servers."""

    def imap(self, auth: str, host: str = "outlook.office365.com", **kw: Any) -> ImapSettings:
        return ImapSettings(host=host, username="box@example.org", auth=auth, **kw)

    def test_microsoft_refuses_a_password(self) -> None:
        text = oauth.login_refused(
            "imap", self.imap("password"), "outlook.office365.com:993", "NO LOGIN failed."
        )
        assert "basic authentication is disabled" in text and 'auth = "oauth2"' in text

    def test_other_servers_keep_the_password_hint(self) -> None:
        text = oauth.login_refused(
            "imap", self.imap("password", host="mail.example.org"), "x:993", "NO LOGIN failed."
        )
        assert text.endswith("check imap.username and the password in $INTAKE_IMAP_PASSWORD")

    def test_google_app_password(self) -> None:
        smtp = SmtpSettings(host="smtp.gmail.com", sender="a@b", username="a@gmail.com")
        text = oauth.login_refused(
            "smtp", smtp, "smtp.gmail.com:587", "534 5.7.9 Application-specific password required."
        )
        assert "Google" in text and 'auth = "oauth2"' in text

    def test_authenticated_but_not_connected(self, sqlite_url: str) -> None:
        o = app_only(sqlite_url, None)  # type: ignore[arg-type]
        imap = self.imap("oauth2", oauth2=o)
        text = oauth.login_refused(
            "imap", imap, "outlook.office365.com:993", "User is authenticated but not connected."
        )
        assert "Add-MailboxPermission" in text and "New-ServicePrincipal" in text


# --- intake check ----------------------------------------------------------------------------


def run_check(config: Path, env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), "check"], env=env)
    return result.exit_code, result.output


class TestCheck:
    @pytest.fixture
    def world(
        self, oauth_dovecot: Dovecot, smtp_server: XOAuth2SmtpServer, tmp_path: Path
    ) -> Iterator[tuple[Path, TokenServer, XOAuth2SmtpServer]]:
        with TokenServer(
            clients={CLIENT: SECRET}, public_clients={PUBLIC}, access_token=ACCESS
        ) as tokens:
            config = tmp_path / "config.toml"
            config.write_text(
                config_text(
                    f"sqlite:///{tmp_path / 'intake.db'}",
                    imap=imap_values(oauth_dovecot.port),
                    smtp=smtp_values(smtp_server.port),
                    oauth2=oauth2_values(tokens),
                )
            )
            yield config, tokens, smtp_server

    def test_everything_works(self, world: Any, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.DEBUG)
        config, tokens, smtp = world
        code, out = run_check(config, ENV)
        assert code == 0, out
        head, database, *lines = out.splitlines()
        assert head == f"Configuration: OK (read {config.resolve()})"
        assert database.startswith("Database: OK (SQLite file") and "first `intake poll`" in database
        assert lines[0].startswith("OAuth2 token: OK (from Microsoft app-only access")
        assert lines[1].startswith("IMAP: OK (signed in as consultation with OAuth2 (XOAUTH2)")
        assert "UIDVALIDITY" in lines[1]
        assert lines[2].startswith("SMTP: OK (signed in as consultation with OAuth2")
        assert "no mail sent" in lines[2] and smtp.received == []
        assert tokens.grants() == ["client_credentials"]
        assert ACCESS not in out + caplog.text and SECRET not in out + caplog.text

    def test_expired_secret(self, world: Any) -> None:
        config, tokens, _ = world
        tokens.fail_next = (401, "invalid_client", "AADSTS7000222: The client secret expired.")
        code, out = run_check(config, ENV)
        assert code == 1
        assert (
            "OAuth2 token: FAILED - OAuth2 token request failed: the client secret has expired"
            in out
        )
        assert "IMAP: FAILED - not tried: no access token" in out
        assert "Fix what FAILED above" in out

    def test_missing_mailbox_permission(self, world: Any) -> None:
        config, tokens, smtp = world
        tokens.access_token = "at-without-mailbox-rights"
        code, out = run_check(config, ENV)
        assert code == 1
        assert "OAuth2 token: OK" in out
        assert "IMAP: FAILED - the IMAP server" in out and "IMAP.AccessAsApp" in out
        assert "SMTP: FAILED - the SMTP server" in out and "SMTP.SendAsApp" in out

    def test_password_with_basic_auth_disabled(self, world: Any, tmp_path: Path) -> None:
        _, _, smtp = world
        config = tmp_path / "password.toml"
        config.write_text(
            config_text(
                f"sqlite:///{tmp_path / 'intake.db'}",
                smtp=smtp_values(smtp.port, auth="password"),
            )
        )
        code, out = run_check(config, {"INTAKE_SMTP_PASSWORD": "pw"})
        assert code == 1
        assert "SMTP: FAILED" in out and "basic authentication is disabled" in out
        assert 'set [smtp] auth = "oauth2"' in out

    def test_revoked_delegated_sign_in(self, world: Any, tmp_path: Path) -> None:
        _, tokens, smtp = world
        url = f"sqlite:///{tmp_path / 'delegated.db'}"
        db.open_database(url).dispose()
        config = tmp_path / "delegated.toml"
        config.write_text(
            config_text(
                url,
                imap=imap_values(1),
                smtp=smtp_values(smtp.port),
                oauth2=oauth2_values(
                    tokens, flow="device", client_id=PUBLIC, client_secret_env="UNSET"
                ),
            )
        )
        s = settings(
            url,
            imap=imap_values(1),
            oauth2=oauth2_values(tokens, flow="device", client_id=PUBLIC),
        )
        store, engine = store_for(url)
        try:
            assert s.oauth2 is not None
            store.save(s.oauth2, "rt-revoked-long-ago")
        finally:
            engine.dispose()
        code, out = run_check(config, {"INTAKE_TOKEN_KEY": KEY})
        assert code == 1
        assert "expired or was revoked" in out and "run `intake auth login` again" in out
        assert "rt-revoked-long-ago" not in out

    def test_status_shows_the_sign_in_problem(self, oauth_dovecot: Dovecot, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'intake.db'}"
        with TokenServer(clients={CLIENT: SECRET}, access_token="at-wrong") as tokens:
            config = tmp_path / "config.toml"
            config.write_text(
                config_text(url, imap=imap_values(oauth_dovecot.port), oauth2=oauth2_values(tokens))
            )
            poll = CliRunner().invoke(cli, ["--config", str(config), "poll"], env=ENV)
            assert poll.exit_code == 1 and "IMAP.AccessAsApp" in poll.output
            status = CliRunner().invoke(cli, ["--config", str(config), "status"], env=ENV)
        assert status.exit_code == 1
        assert "Last poll FAILED" in status.output and "IMAP.AccessAsApp" in status.output
