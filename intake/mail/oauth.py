"""OAuth2 sign-in for IMAP and SMTP: access tokens, the stored refresh token, XOAUTH2.

Where an access token comes from depends on ``[oauth2]``:

* ``provider = "microsoft"``, ``flow = "client_credentials"`` (the default): app-only
  access with the app's client secret or a certificate (a signed client assertion);
* ``flow = "device"`` or ``"auth_code"`` (Microsoft delegated, and Google, which
  only has ``auth_code`` for mail): a person signs in once with ``intake auth login``;
  the refresh token is kept in the ``oauth_tokens`` table, encrypted with the Fernet
  key in ``$INTAKE_TOKEN_KEY``, and every new refresh token the provider hands out
  replaces it at once (Microsoft rotates them on every use);
* ``provider = "command"``: an admin-given command prints the token.

Every request is a plain RFC 6749 / RFC 8628 / RFC 7636 token request over HTTPS
(``urllib``), so any standard endpoint works, including a sovereign cloud's
(``authority``/``token_url``). Access tokens are cached in memory and renewed a
minute before they expire.

Failures become :class:`TokenError` (or, at the mail server, the messages of
:func:`login_refused`) in plain words that say what to fix. No token, secret or key
is ever logged or put in an error message or a repr.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import secrets
import shlex
import smtplib
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..config import ImapSettings, OAuth2Settings, SmtpSettings
from ..errors import IntakeError

# The stored sign-in (cryptography, SQLAlchemy and the token table) is loaded when first
# used: an app-only or command token, and `intake auth new-key`, need none of it.
if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

__all__ = [
    "AuthorizationRequest",
    "DeviceCode",
    "Endpoints",
    "LogOnce",
    "OAuth2TokenSource",
    "TokenError",
    "TokenSource",
    "TokenSources",
    "TokenStore",
    "default_scopes",
    "describe_source",
    "endpoints",
    "finish_authorization",
    "login_refused",
    "new_key",
    "poll_device_code",
    "smtp_xoauth2",
    "start_authorization",
    "start_device_code",
    "xoauth2_string",
]

log = logging.getLogger(__name__)

EARLY_S = 60.0  # renew an access token this long before it expires
_UNKNOWN_LIFETIME_S = 300.0  # a command's token without an expiry is reused this long
_DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_MICROSOFT_AUTHORITY = "https://login.microsoftonline.com"
_MICROSOFT_APP_SCOPES = ("https://outlook.office365.com/.default",)
_MICROSOFT_USER_SCOPES = (
    "https://outlook.office.com/IMAP.AccessAsUser.All",
    "https://outlook.office.com/SMTP.Send",
    "offline_access",
)
_GOOGLE_SCOPES = ("https://mail.google.com/",)


class TokenError(IntakeError):
    """An access token could not be had; the message says what to fix.

    ``code`` is the OAuth2 error code (``invalid_grant``, ...) or one of our own:
    ``unreachable``, ``no_sign_in``, ``undecryptable``, ``command``, ``bad_response``.
    """

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class TokenSource(Protocol):
    """Something that hands out OAuth2 access tokens."""

    def access_token(self) -> str: ...

    def invalidate(self) -> None: ...


# --- logging without spam --------------------------------------------------------------


class LogOnce:
    """Log a problem once per distinct message, then quietly until it changes or clears.

    The worker retries on its own schedule; the log should say "this is wrong" once,
    and "it works again" once, not every minute.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._last: dict[str, str] = {}
        self._lock = threading.Lock()

    def problem(self, key: str, message: str) -> None:
        with self._lock:
            repeated = self._last.get(key) == message
            self._last[key] = message
        if repeated:
            self._logger.debug("%s (still failing)", message)
        else:
            self._logger.warning("%s", message)

    def resolved(self, key: str, message: str) -> None:
        with self._lock:
            had = self._last.pop(key, None)
        if had is not None:
            self._logger.warning("%s", message)


_once = LogOnce(log)


# --- provider knowledge -----------------------------------------------------------------


@dataclass(frozen=True)
class Endpoints:
    token: str
    device: str
    authorize: str


def endpoints(o: OAuth2Settings) -> Endpoints:
    """The token, device-code and authorization URLs for ``o`` (overrides win)."""
    if o.provider == "google":
        found = Endpoints(
            token="https://oauth2.googleapis.com/token",  # noqa: S106 - a URL
            device="https://oauth2.googleapis.com/device/code",
            authorize="https://accounts.google.com/o/oauth2/v2/auth",
        )
    else:
        base = f"{(o.authority or _MICROSOFT_AUTHORITY).rstrip('/')}/{o.tenant_id}/oauth2/v2.0"
        found = Endpoints(
            token=f"{base}/token", device=f"{base}/devicecode", authorize=f"{base}/authorize"
        )
    return Endpoints(
        token=o.token_url or found.token,
        device=o.device_code_url or found.device,
        authorize=o.authorize_url or found.authorize,
    )


def default_scopes(o: OAuth2Settings) -> tuple[str, ...]:
    if o.scopes:
        return o.scopes
    if o.provider == "google":
        return _GOOGLE_SCOPES
    return _MICROSOFT_APP_SCOPES if o.flow == "client_credentials" else _MICROSOFT_USER_SCOPES


def describe_source(o: OAuth2Settings) -> str:
    """How tokens are obtained, in words (no secrets)."""
    if o.provider == "command":
        program = shlex.split(o.token_command)[0] if o.token_command.strip() else "?"
        return f"the command {program!r} (oauth2.token_command)"
    who = {"microsoft": "Microsoft", "google": "Google"}[o.provider]
    if o.flow == "client_credentials":
        how = "a certificate" if o.certificate_path else "a client secret"
        return f"{who} app-only access with {how} (app {o.client_id})"
    return f"{who} sign-in of {o.account} ({o.flow.replace('_', ' ')} flow, app {o.client_id})"


# --- what went wrong, in plain words ---------------------------------------------------

_AADSTS_HINTS: dict[str, str] = {
    "AADSTS7000215": (
        "the client secret is wrong: copy the secret's Value (not its Secret ID) from "
        "Entra ID > App registrations > your app > Certificates & secrets into ${env}"
    ),
    "AADSTS7000222": (
        "the client secret has expired: add a new one under Entra ID > App registrations > "
        "your app > Certificates & secrets and put its Value in ${env}"
    ),
    "AADSTS700016": (
        "there is no app with oauth2.client_id in the tenant oauth2.tenant_id: copy both "
        "IDs from the app registration's Overview page"
    ),
    "AADSTS700025": (
        "the app is a public client, so no secret may be sent: unset ${env} or point "
        "oauth2.client_secret_env at an unset variable"
    ),
    "AADSTS90002": "the tenant was not found: check oauth2.tenant_id (the Directory ID)",
    "AADSTS900023": "oauth2.tenant_id is not a valid tenant: use the Directory (tenant) ID",
    "AADSTS65001": (
        "admin consent is missing: in Entra ID > App registrations > your app > API "
        "permissions, press 'Grant admin consent'"
    ),
    "AADSTS700027": (
        "the certificate is not accepted: upload its public part (.cer/.pem) under "
        "Certificates & secrets, and check oauth2.certificate_thumbprint"
    ),
    "AADSTS700024": "the client assertion's time is off: check this machine's clock",
    "AADSTS70011": "the requested scopes are not valid: check oauth2.scopes",
    "AADSTS53003": "Conditional Access blocked the sign-in: ask the tenant admin to allow it",
    "AADSTS50076": "the sign-in needs multi-factor authentication: run `intake auth login` again",
}


def _aadsts(description: str) -> str:
    start = description.find("AADSTS")
    if start < 0:
        return ""
    end = start + 6
    while end < len(description) and description[end].isdigit():
        end += 1
    return description[start:end]


def _first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:limit]


def explain_token_error(
    o: OAuth2Settings, code: str, description: str, *, grant: str, url: str
) -> str:
    """One sentence on a token endpoint's error response: what it means, what to do."""
    aad = _aadsts(description)
    env = o.client_secret_env
    if aad in _AADSTS_HINTS:
        hint = _AADSTS_HINTS[aad].replace("${env}", f"${env}")
    elif code == "invalid_grant" and grant != "client_credentials":
        if grant == "refresh_token":
            hint = (
                f"the stored sign-in for {o.account} has expired or was revoked (a password "
                "change, an admin, or months unused): run `intake auth login` again"
            )
        else:
            hint = "the sign-in code was not accepted: run `intake auth login` again"
    elif code in ("invalid_client", "unauthorized_client"):
        secret = "certificate" if o.certificate_path else f"client secret in ${env}"
        hint = (
            f"the provider refused the app's credentials ({code}): check oauth2.client_id "
            f"and the {secret}; secrets expire, so make a new one if it is old"
        )
    elif code == "invalid_scope":
        hint = (
            "the requested scopes were refused: check oauth2.scopes (leave it out for "
            f"the default: {' '.join(default_scopes(o))})"
        )
    elif code == "access_denied":
        hint = "the sign-in was declined or not allowed for this account"
    elif code == "expired_token":
        hint = "the code expired before the sign-in was finished: run `intake auth login` again"
    else:
        hint = f"the token endpoint {url} answered {code or 'an error'}"
        detail = _first_line(description)
        if detail:
            hint += f": {detail}"
    tag = ", ".join(part for part in (code, aad) if part)
    return f"OAuth2 token request failed: {hint}" + (f" [{tag}]" if tag else "")


_MICROSOFT_HOSTS = ("office365.com", "outlook.com", "office.com", "microsoft.com")


def login_refused(
    protocol: str, settings: ImapSettings | SmtpSettings, where: str, server_text: str
) -> str:
    """The message for a mail server that refused our login, with what to fix."""
    key = protocol.lower()
    proto = protocol.upper()
    text = server_text.lower()
    said = _first_line(server_text.replace("\r", " "))
    microsoft = settings.host.lower().endswith(_MICROSOFT_HOSTS) or (
        settings.oauth2 is not None and settings.oauth2.provider == "microsoft"
    )
    smtp_auth_off = "smtpclientauthentication is disabled" in text or (
        "5.7.139" in text and "basic" not in text
    )
    if smtp_auth_off:
        return (
            f"the SMTP server {where} refused the login for {settings.username!r}: SMTP AUTH "
            "is switched off for this mailbox or tenant; in Exchange Online PowerShell run "
            f"Set-CASMailbox -Identity {settings.username} -SmtpClientAuthenticationDisabled "
            f"$false (and allow SMTP AUTH in the tenant's settings) (server said: {said})"
        )
    if settings.auth == "password":
        head = f"the {proto} server {where} refused the login for {settings.username!r}"
        basic_off = "basic authentication is disabled" in text or "basicauthblocked" in text
        if basic_off or (microsoft and ("login failed" in text or "authenticate failed" in text)):
            return (
                f"{head}: the server no longer accepts passwords (basic authentication is "
                f'disabled); set [{key}] auth = "oauth2" and add an [oauth2] section as the '
                f"README's 'Microsoft 365' section shows (server said: {said})"
            )
        if "application-specific password" in text or "5.7.9" in text:
            return (
                f"{head}: Google does not accept the account password here; set [{key}] "
                "auth = \"oauth2\" and add an [oauth2] section as the README's 'Google' "
                f"section shows (server said: {said})"
            )
        return f"{head}; check {key}.username and the password in ${settings.password_env}"
    head = f"the {proto} server {where} refused the OAuth2 access token for {settings.username!r}"
    o = settings.oauth2
    if "not connected" in text:
        fix = (
            "the app signed in but has no access to this mailbox: register the app's "
            "service principal in Exchange Online and give it FullAccess to the mailbox "
            "(New-ServicePrincipal, then Add-MailboxPermission; README 'Microsoft 365', "
            "step 6); changes can take 30 minutes to apply"
        )
    elif o is None or o.provider == "command":
        fix = (
            f"check that the token oauth2.token_command prints is for {settings.username} "
            f"and carries the {proto} scope"
        )
    elif o.provider == "microsoft" and o.flow == "client_credentials":
        permission = "IMAP.AccessAsApp" if key == "imap" else "SMTP.SendAsApp"
        fix = (
            f"check that {key}.username is the mailbox the app was given access to, that "
            f"the app has the {permission} permission (Office 365 Exchange Online, "
            "Application) with admin consent, and that its Exchange service principal "
            "has FullAccess to the mailbox (README 'Microsoft 365', steps 3 to 6)"
        )
    elif o.provider == "microsoft":
        fix = (
            f"check that {settings.username} is the account that signed in with "
            "`intake auth login` and that IMAP and SMTP AUTH are enabled for it"
        )
    else:
        fix = (
            f"check that {settings.username} is the Google account that signed in with "
            "`intake auth login`, and that IMAP is on in that account's Gmail settings"
        )
    return f"{head}: {fix} (server said: {said})"


# --- HTTP -------------------------------------------------------------------------------


def _post(o: OAuth2Settings, url: str, form: Mapping[str, str], *, grant: str) -> dict[str, Any]:
    """POST a form to a token endpoint; the JSON answer, or TokenError in plain words."""
    if urllib.parse.urlsplit(url).scheme not in ("https", "http"):
        raise TokenError(f"the token endpoint {url!r} is not an http(s) URL", "bad_url")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=urllib.parse.urlencode(form).encode("ascii"),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=o.timeout_s) as response:  # noqa: S310
            body = response.read()
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        exc.close()
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if isinstance(answer, dict) and isinstance(answer.get("error"), str):
            raise TokenError(
                explain_token_error(
                    o,
                    answer["error"],
                    str(answer.get("error_description") or ""),
                    grant=grant,
                    url=url,
                ),
                answer["error"],
            ) from None
        raise TokenError(
            f"OAuth2 token request failed: the token endpoint {url} answered HTTP {exc.code}"
            + (" (no permission)" if exc.code == 403 else ""),
            f"http_{exc.code}",
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TokenError(
            f"OAuth2 token request failed: cannot reach the token endpoint {url} ({reason}); "
            "check the network, a proxy or firewall, and oauth2.authority/token_url",
            "unreachable",
        ) from None
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise TokenError(
            f"OAuth2 token request failed: the token endpoint {url} did not answer JSON",
            "bad_response",
        )
    return answer


@dataclass(frozen=True)
class _Issued:
    access_token: str
    expires_in: float
    refresh_token: str | None = None

    def __repr__(self) -> str:
        return f"_Issued(expires_in={self.expires_in})"


def _issued(answer: Mapping[str, Any], url: str) -> _Issued:
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise TokenError(
            f"OAuth2 token request failed: the token endpoint {url} sent no access_token",
            "bad_response",
        )
    try:
        expires_in = float(answer.get("expires_in", 3600))
    except (TypeError, ValueError):
        expires_in = 3600.0
    refresh = answer.get("refresh_token")
    return _Issued(token, expires_in, refresh if isinstance(refresh, str) and refresh else None)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _client_assertion(o: OAuth2Settings, audience: str, now: float) -> str:
    """An RS256-signed JWT proving we hold the app's certificate (RFC 7523)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    assert o.certificate_path is not None
    try:
        pem = o.certificate_path.read_bytes()
        key = serialization.load_pem_private_key(pem, password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise TokenError(
            f"oauth2.certificate_path: cannot read an unencrypted private key from "
            f"{str(o.certificate_path)!r} ({type(exc).__name__})",
            "certificate",
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TokenError("oauth2.certificate_path: the private key must be RSA", "certificate")
    if o.certificate_thumbprint:
        try:
            thumbprint = bytes.fromhex(o.certificate_thumbprint.replace(":", ""))
        except ValueError:
            raise TokenError(
                "oauth2.certificate_thumbprint: expected the hex SHA-1 thumbprint Entra ID "
                "shows for the certificate",
                "certificate",
            ) from None
    else:
        try:
            cert = x509.load_pem_x509_certificate(pem)
        except ValueError:
            raise TokenError(
                "oauth2.certificate_path: the file has no certificate; add it to the PEM "
                "file or set oauth2.certificate_thumbprint",
                "certificate",
            ) from None
        thumbprint = cert.fingerprint(hashes.SHA1())  # noqa: S303 - x5t is SHA-1 by definition
    header = {"alg": "RS256", "typ": "JWT", "x5t": _b64url(thumbprint)}
    claims = {
        "aud": audience,
        "iss": o.client_id,
        "sub": o.client_id,
        "jti": str(uuid.uuid4()),
        "nbf": int(now),
        "iat": int(now),
        "exp": int(now) + 600,
    }
    signing_input = (
        _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
    )
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + _b64url(signature)


def _client_auth(o: OAuth2Settings, audience: str, now: float) -> dict[str, str]:
    form = {"client_id": o.client_id}
    if o.certificate_path is not None:
        form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        form["client_assertion"] = _client_assertion(o, audience, now)
    elif o.client_secret:
        form["client_secret"] = o.client_secret
    return form


# --- the stored refresh token ----------------------------------------------------------


def new_key() -> str:
    """A fresh Fernet key for ``$INTAKE_TOKEN_KEY``."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")


class TokenStore:
    """The refresh token of a delegated sign-in, encrypted, in ``oauth_tokens``."""

    def __init__(self, sessions: sessionmaker[Session], key: str) -> None:
        from cryptography.fernet import Fernet

        self._sessions = sessions
        self._fernet = Fernet(key.encode("ascii"))

    def __repr__(self) -> str:
        return "TokenStore()"

    def load(self, o: OAuth2Settings) -> str | None:
        from cryptography.fernet import InvalidToken
        from sqlalchemy.exc import SQLAlchemyError

        from store import tokens

        try:
            with self._sessions() as session:
                row = tokens.find_token(session, o.provider, o.client_id, o.account)
        except SQLAlchemyError as exc:
            raise TokenError(f"cannot read the stored sign-in from the database: {exc}") from exc
        if row is None:
            return None
        try:
            return self._fernet.decrypt(row.refresh_token_encrypted.encode("ascii")).decode()
        except (InvalidToken, ValueError):
            raise TokenError(
                f"the stored sign-in cannot be decrypted with the key in "
                f"${o.encryption_key_env} (was the key changed?): run `intake auth login` again",
                "undecryptable",
            ) from None

    def updated_at(self, o: OAuth2Settings) -> dt.datetime | None:
        from store import tokens

        with self._sessions() as session:
            row = tokens.find_token(session, o.provider, o.client_id, o.account)
            return None if row is None else row.updated_at

    def save(self, o: OAuth2Settings, refresh_token: str) -> None:
        from sqlalchemy.exc import IntegrityError, SQLAlchemyError

        from store import tokens

        encrypted = self._fernet.encrypt(refresh_token.encode()).decode("ascii")
        now = dt.datetime.now(dt.UTC)
        for _attempt in range(2):
            try:
                with self._sessions() as session:
                    tokens.put_token(
                        session, o.provider, o.client_id, o.account, encrypted=encrypted, now=now
                    )
                    session.commit()
                return
            except IntegrityError:  # another process inserted it first: update theirs
                continue
            except SQLAlchemyError as exc:
                raise TokenError(
                    f"cannot save the new refresh token in the database: {exc}"
                ) from exc

    def delete(self, o: OAuth2Settings) -> bool:
        from store import tokens

        with self._sessions() as session:
            deleted = tokens.delete_token(session, o.provider, o.client_id, o.account)
            session.commit()
            return deleted


# --- token sources ----------------------------------------------------------------------


class OAuth2TokenSource:
    """Access tokens for one ``[oauth2]`` configuration, cached until a minute before expiry.

    Thread-safe: the poller, the IDLE thread and the mailer may share one.
    """

    def __init__(
        self,
        settings: OAuth2Settings,
        store: TokenStore | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if settings.delegated and store is None:
            raise ValueError("a delegated flow needs a TokenStore")
        self.settings = settings
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0

    def __repr__(self) -> str:
        return f"OAuth2TokenSource({describe_source(self.settings)})"

    @property
    def expires_at(self) -> float:
        return self._expires_at

    def access_token(self) -> str:
        """A valid access token, fetched only when the cached one is (nearly) expired.

        Raises:
            TokenError: in words that say what to fix.
        """
        with self._lock:
            if self._token is not None and self.clock() < self._expires_at - EARLY_S:
                return self._token
            key = f"oauth2:{describe_source(self.settings)}"
            try:
                issued = self._fetch()
            except TokenError as exc:
                _once.problem(key, str(exc))
                raise
            _once.resolved(key, f"OAuth2 tokens are being issued again ({key[7:]})")
            self._token = issued.access_token
            self._expires_at = self.clock() + issued.expires_in
            log.debug("new OAuth2 access token, valid for %.0f s", issued.expires_in)
            return self._token

    def invalidate(self) -> None:
        """Forget the cached access token (the mail server refused it)."""
        with self._lock:
            self._token, self._expires_at = None, 0.0

    def _fetch(self) -> _Issued:
        o = self.settings
        if o.provider == "command":
            return _run_command(o, self.clock)
        if o.flow == "client_credentials":
            url = endpoints(o).token
            form = {
                "grant_type": "client_credentials",
                "scope": " ".join(default_scopes(o)),
                **_client_auth(o, url, self.clock()),
            }
            return _issued(_post(o, url, form, grant="client_credentials"), url)
        return self._refresh()

    def _refresh(self) -> _Issued:
        o, store = self.settings, self.store
        assert store is not None
        stored = store.load(o)
        if stored is None:
            raise TokenError(
                f"nobody has signed in yet for {o.account}: run `intake auth login` once",
                "no_sign_in",
            )
        try:
            issued = self._redeem(stored)
        except TokenError as exc:
            # Another process may have rotated it a moment ago: try the newest once.
            latest = store.load(o) if exc.code == "invalid_grant" else None
            if latest is None or latest == stored:
                raise
            stored = latest
            issued = self._redeem(stored)
        if issued.refresh_token and issued.refresh_token != stored:
            store.save(o, issued.refresh_token)
        return issued

    def _redeem(self, refresh_token: str) -> _Issued:
        o = self.settings
        url = endpoints(o).token
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "scope": " ".join(default_scopes(o)),
            **_client_auth(o, url, self.clock()),
        }
        return _issued(_post(o, url, form, grant="refresh_token"), url)


def _run_command(o: OAuth2Settings, clock: Callable[[], float]) -> _Issued:
    """Run ``oauth2.token_command``; it prints a token, or JSON with one."""
    try:
        argv = shlex.split(o.token_command)
    except ValueError as exc:
        raise TokenError(f"oauth2.token_command: cannot split it into words ({exc})") from None
    program = argv[0] if argv else ""
    try:
        done = subprocess.run(  # noqa: S603 - an admin-configured command, no shell
            argv, capture_output=True, text=True, timeout=o.timeout_s, check=False
        )
    except FileNotFoundError:
        raise TokenError(
            f"oauth2.token_command: the program {program!r} was not found; give its full path",
            "command",
        ) from None
    except subprocess.TimeoutExpired:
        raise TokenError(
            f"oauth2.token_command: {program!r} did not finish within {o.timeout_s:g} s "
            "(oauth2.timeout_s)",
            "command",
        ) from None
    except OSError as exc:
        raise TokenError(
            f"oauth2.token_command: cannot run {program!r} ({exc.strerror})", "command"
        ) from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        detail = f": {lines[-1][:300]}" if lines else ""
        raise TokenError(
            f"oauth2.token_command: {program!r} failed with exit status {done.returncode}{detail}",
            "command",
        )
    out = done.stdout.strip()
    token, expires_in = "", _UNKNOWN_LIFETIME_S
    if out.startswith("{"):
        try:
            answer = json.loads(out)
        except ValueError:
            answer = {}
        value = answer.get("access_token") or answer.get("accessToken") or answer.get("token")
        token = value if isinstance(value, str) else ""
        if isinstance(answer.get("expires_in"), int | float):
            expires_in = float(answer["expires_in"])
        elif isinstance(answer.get("expires_on"), int | float | str):
            try:
                expires_in = float(answer["expires_on"]) - clock()
            except ValueError:
                pass
    else:
        lines = out.splitlines()
        token = lines[-1].strip() if lines else ""
        if any(ch.isspace() for ch in token):
            token = ""
    if not token:
        raise TokenError(
            f"oauth2.token_command: {program!r} printed no access token (expected the token "
            'alone on the last line, or JSON with "access_token")',
            "command",
        )
    return _Issued(token, expires_in)


class TokenSources:
    """The token sources of one application: one per ``[oauth2]`` configuration.

    The IMAP inbox, the mailer and ``intake check`` ask the same object (the App's), so an
    access token is fetched once and reused across connections until it expires. A
    delegated sign-in reads its refresh token through an engine of its own, without a
    pool, disposed by :meth:`close`.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sources: dict[OAuth2Settings, OAuth2TokenSource] = {}
        self._engines: list[Any] = []

    def __repr__(self) -> str:
        return f"TokenSources({len(self._sources)} source(s))"

    def source_for(self, o: OAuth2Settings) -> OAuth2TokenSource:
        """The token source for ``o``, made on first use."""
        o.require_secrets()  # ConfigError naming an unset variable, before any network
        with self._lock:
            source = self._sources.get(o)
            if source is None:
                store = None
                if o.delegated:
                    from sqlalchemy.pool import NullPool

                    from store.db import make_engine, make_session_factory

                    engine = make_engine(o.database_url, poolclass=NullPool)
                    self._engines.append(engine)
                    store = TokenStore(make_session_factory(engine), o.encryption_key)
                source = self._sources[o] = OAuth2TokenSource(o, store)
            return source

    def invalidate(self, o: OAuth2Settings) -> None:
        """Forget the access tokens of the app ``o`` names (a new sign-in was stored)."""
        with self._lock:
            for settings, source in self._sources.items():
                if settings.provider == o.provider and settings.client_id == o.client_id:
                    source.invalidate()

    def close(self) -> None:
        """Drop every source and dispose of their engines."""
        with self._lock:
            self._sources.clear()
            engines, self._engines = self._engines, []
        for engine in engines:
            engine.dispose()


# --- delegated sign-in (intake auth login) ---------------------------------------------


@dataclass(frozen=True)
class DeviceCode:
    """What the person must do: open ``verification_uri`` and enter ``user_code``."""

    user_code: str
    verification_uri: str
    message: str
    interval: float
    expires_in: float
    device_code: str = ""

    def __repr__(self) -> str:
        return f"DeviceCode(user_code={self.user_code!r}, uri={self.verification_uri!r})"


def start_device_code(o: OAuth2Settings) -> DeviceCode:
    """Ask for a device code (RFC 8628 section 3.1)."""
    url = endpoints(o).device
    form = {"client_id": o.client_id, "scope": " ".join(default_scopes(o))}
    answer = _post(o, url, form, grant="device_code_request")
    try:
        uri = str(answer.get("verification_uri") or answer["verification_url"])
        return DeviceCode(
            user_code=str(answer["user_code"]),
            verification_uri=uri,
            message=str(answer.get("message") or ""),
            interval=float(answer.get("interval", 5)),
            expires_in=float(answer.get("expires_in", 900)),
            device_code=str(answer["device_code"]),
        )
    except (KeyError, TypeError, ValueError):
        raise TokenError(
            f"OAuth2 sign-in failed: the device-code endpoint {url} sent an incomplete answer",
            "bad_response",
        ) from None


def poll_device_code(
    o: OAuth2Settings,
    store: TokenStore,
    code: DeviceCode,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    sources: TokenSources | None = None,
) -> None:
    """Wait until the person has signed in, then store the refresh token (RFC 8628 3.4).

    ``sources``, when given, forget their access tokens for this app once it is stored.
    """
    url = endpoints(o).token
    interval = max(code.interval, 0.0)
    deadline = clock() + code.expires_in
    while True:
        form = {"grant_type": _DEVICE_GRANT, "device_code": code.device_code}
        form.update(_client_auth(o, url, time.time()))
        try:
            answer = _post(o, url, form, grant=_DEVICE_GRANT)
        except TokenError as exc:
            if exc.code == "authorization_pending":
                pass
            elif exc.code == "slow_down":
                interval += 5
            else:
                raise
            if clock() > deadline:
                raise TokenError(
                    explain_token_error(o, "expired_token", "", grant=_DEVICE_GRANT, url=url),
                    "expired_token",
                ) from None
            sleep(interval)
            continue
        _save_sign_in(o, store, _issued(answer, url), sources)
        return


@dataclass(frozen=True)
class AuthorizationRequest:
    """The URL to open, and what is needed to redeem the code it leads to (PKCE)."""

    url: str
    state: str
    verifier: str

    def __repr__(self) -> str:
        return f"AuthorizationRequest(url={self.url!r})"


def start_authorization(o: OAuth2Settings) -> AuthorizationRequest:
    """The authorization URL for the code flow with PKCE (RFC 6749 4.1, RFC 7636)."""
    verifier = _b64url(secrets.token_bytes(48))
    challenge = _b64url(hashlib.sha256(verifier.encode("ascii")).digest())
    state = secrets.token_urlsafe(16)
    params = {
        "client_id": o.client_id,
        "response_type": "code",
        "redirect_uri": o.redirect_uri,
        "scope": " ".join(default_scopes(o)),
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "login_hint": o.account,
    }
    if o.provider == "google":
        params.update(access_type="offline", prompt="consent")  # else no refresh token
    else:
        params["prompt"] = "select_account"
    url = endpoints(o).authorize
    joiner = "&" if "?" in url else "?"
    return AuthorizationRequest(url + joiner + urllib.parse.urlencode(params), state, verifier)


def finish_authorization(
    o: OAuth2Settings,
    store: TokenStore,
    request: AuthorizationRequest,
    pasted: str,
    *,
    sources: TokenSources | None = None,
) -> None:
    """Redeem the code (or the whole address the browser landed on) and store the result.

    ``sources``, when given, forget their access tokens for this app once it is stored.
    """
    pasted = pasted.strip()
    code = pasted
    if "code=" in pasted:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(pasted).query or pasted)
        if "error" in query:
            raise TokenError(
                "OAuth2 sign-in failed: "
                + explain_token_error(
                    o,
                    query["error"][0],
                    query.get("error_description", [""])[0],
                    grant="authorization_code",
                    url=endpoints(o).authorize,
                ).removeprefix("OAuth2 token request failed: "),
                query["error"][0],
            )
        if query.get("state", [request.state])[0] != request.state:
            raise TokenError(
                "OAuth2 sign-in failed: the address is from a different sign-in (its state "
                "does not match); run `intake auth login` again and use the new address",
                "state",
            )
        code = query.get("code", [""])[0]
    if not code:
        raise TokenError("OAuth2 sign-in failed: no code given", "no_code")
    url = endpoints(o).token
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": o.redirect_uri,
        "code_verifier": request.verifier,
        **_client_auth(o, url, time.time()),
    }
    issued = _issued(_post(o, url, form, grant="authorization_code"), url)
    _save_sign_in(o, store, issued, sources)


def _save_sign_in(
    o: OAuth2Settings, store: TokenStore, issued: _Issued, sources: TokenSources | None
) -> None:
    if not issued.refresh_token:
        hint = (
            "add offline_access to oauth2.scopes"
            if o.provider == "microsoft"
            else "remove the app under https://myaccount.google.com/permissions, sign in again"
        )
        raise TokenError(
            f"OAuth2 sign-in failed: the provider sent no refresh token; {hint}",
            "no_refresh_token",
        )
    store.save(o, issued.refresh_token)
    if sources is not None:
        sources.invalidate(o)


# --- XOAUTH2 -----------------------------------------------------------------------------


def xoauth2_string(username: str, access_token: str) -> str:
    """The SASL XOAUTH2 initial response (before base64)."""
    return f"user={username}\x01auth=Bearer {access_token}\x01\x01"


def smtp_xoauth2(client: smtplib.SMTP, username: str, access_token: str) -> None:
    """``AUTH XOAUTH2`` on an open SMTP connection.

    Raises:
        smtplib.SMTPAuthenticationError: the server refused the token.
    """
    client.ehlo_or_helo_if_needed()
    initial = xoauth2_string(username, access_token)

    def respond(challenge: bytes | None = None) -> str:
        # A challenge after the token carries the server's JSON error: answer empty,
        # and the server finishes with its 535.
        return initial if challenge is None else ""

    client.auth("XOAUTH2", respond, initial_response_ok=True)


# --- for the digest ----------------------------------------------------------------------
