"""``intake check``: open the database, sign in to IMAP and SMTP, and say what works.

Nothing is changed and no mail is sent: the database is opened and its schema
version read (never created or upgraded); IMAP logs in, opens the folder and reads
its UIDVALIDITY; SMTP connects, signs in and sends NOOP.
"""

from __future__ import annotations

import os
import smtplib
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from parsers.result import MB
from store import db

from ..config import Settings
from ..errors import ConfigError, IntakeError
from . import oauth
from .imap import ImapInbox
from .smtp import Mailer

__all__ = ["CheckResult", "check_database", "run_checks"]


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        if self.ok:
            return f"{self.name}: OK ({self.detail})"
        return f"{self.name}: FAILED - {self.detail}"


def _method(auth: str, username: str) -> str:
    if auth == "oauth2":
        return f"signed in as {username} with OAuth2 (XOAUTH2)"
    return f"signed in as {username} with a password" if username else "no sign-in configured"


def check_database(settings: Settings) -> CheckResult:
    """Open the database read-only in spirit: reachable, and its schema current."""
    url = settings.database.url
    where = db.describe_url(url)
    path = db.sqlite_path(url)
    if path is not None and not path.exists():
        folder = path.parent
        if not folder.is_dir():
            return CheckResult(
                "Database",
                False,
                f"the folder {folder} of the SQLite file does not exist; create it "
                "or change database.url",
            )
        if not os.access(folder, os.W_OK):
            return CheckResult(
                "Database", False, f"the folder {folder} is not writable by this user"
            )
        return CheckResult(
            "Database", True, f"{where} does not exist yet; the first `intake poll` creates it"
        )
    try:
        engine = db.make_engine(settings.database.connect_url)
        try:
            current = db.current_revision(engine)
        finally:
            engine.dispose()
    except ConfigError as exc:
        return CheckResult("Database", False, str(exc))
    except (SQLAlchemyError, ImportError) as exc:
        return CheckResult("Database", False, db.explain_error(url, exc))
    if current == db.HEAD_REVISION:
        return CheckResult("Database", True, f"{where}; schema {current} is current")
    if current is None:
        return CheckResult(
            "Database",
            True,
            f"{where} is reachable and has no schema yet; `intake db upgrade` or the "
            "first `intake poll` creates it (if it holds other tables, use another database)",
        )
    return CheckResult(
        "Database",
        False,
        f"{where}: schema {current}, this version needs {db.HEAD_REVISION}; back it up, "
        "then run `intake db upgrade`",
    )


def run_checks(settings: Settings, tokens: oauth.TokenSources) -> list[CheckResult]:
    """One result per part: the database, the token source (if OAuth2), the inbox, SMTP.

    ``tokens`` (the App's) gives IMAP and SMTP the access token the first check fetched.
    """
    results: list[CheckResult] = [check_database(settings)]
    token_failed = False
    o = settings.oauth2
    users = [s for s in (settings.imap, settings.smtp) if s is not None and s.auth == "oauth2"]
    if o is not None and users:
        try:
            source = tokens.source_for(o)
            source.access_token()
        except (oauth.TokenError, ConfigError) as exc:
            token_failed = True
            results.append(CheckResult("OAuth2 token", False, str(exc)))
        else:
            minutes = max(0, int((source.expires_at - source.clock()) // 60))
            results.append(
                CheckResult(
                    "OAuth2 token",
                    True,
                    f"from {oauth.describe_source(o)}; valid for {minutes} more minute(s)",
                )
            )
    imap = settings.imap
    if imap is not None:
        if imap.auth == "oauth2" and token_failed:
            results.append(CheckResult("IMAP", False, "not tried: no access token (see above)"))
        else:
            limit = int(settings.limits.max_message_mb * MB)
            try:
                with ImapInbox(imap, max_message_bytes=limit, tokens=tokens) as inbox:
                    detail = (
                        f"{_method(imap.auth, imap.username)} on {imap.host}:"
                        f"{imap.effective_port}; folder {imap.folder!r} opened "
                        f"(UIDVALIDITY {inbox.uidvalidity})"
                    )
                results.append(CheckResult("IMAP", True, detail))
            except IntakeError as exc:
                results.append(CheckResult("IMAP", False, str(exc)))
    elif settings.maildir is None:
        results.append(
            CheckResult("Inbox", True, "none configured: `intake import` only, no polling")
        )
    else:
        path = settings.maildir.path
        ok = os.path.isdir(path / "cur") and os.path.isdir(path / "new")
        results.append(
            CheckResult(
                "Inbox",
                ok,
                f"Maildir {path}, no sign-in needed"
                if ok
                else f"{path} is not a Maildir (no cur/ and new/); check maildir.path",
            )
        )
    smtp = settings.smtp
    if smtp is None:
        results.append(CheckResult("SMTP", True, "not configured: no acknowledgements or digests"))
    elif smtp.auth == "oauth2" and token_failed:
        results.append(CheckResult("SMTP", False, "not tried: no access token (see above)"))
    else:
        try:
            with Mailer(smtp, tokens).connect() as connection:
                code, _ = connection.client.noop()
            if code != 250:
                raise IntakeError(f"the SMTP server answered NOOP with {code}")
            results.append(
                CheckResult(
                    "SMTP",
                    True,
                    f"{_method(smtp.auth, smtp.username)} on {smtp.host}:{smtp.effective_port}; "
                    "no mail sent",
                )
            )
        except (IntakeError, smtplib.SMTPException, OSError) as exc:
            results.append(CheckResult("SMTP", False, str(exc)))
    return results
