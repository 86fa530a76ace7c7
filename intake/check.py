"""``intake check``: sign in to IMAP and SMTP the configured way and say what works.

Nothing is changed and no mail is sent: IMAP logs in, opens the folder and reads
its UIDVALIDITY; SMTP connects, signs in and sends NOOP.
"""

from __future__ import annotations

import os
import smtplib
from dataclasses import dataclass

from parsers.result import MB

from . import oauth
from .config import Settings
from .errors import IntakeError
from .mailer import Mailer
from .poller import ImapInbox

__all__ = ["CheckResult", "run_checks"]


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


def run_checks(settings: Settings) -> list[CheckResult]:
    """One result per part: the token source (if OAuth2 is used), the inbox, SMTP."""
    results: list[CheckResult] = []
    token_failed = False
    o = settings.oauth2
    users = [s for s in (settings.imap, settings.smtp) if s is not None and s.auth == "oauth2"]
    if o is not None and users:
        source = oauth.source_for(o)
        try:
            source.access_token()
        except oauth.TokenError as exc:
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
                with ImapInbox(imap, max_message_bytes=limit) as inbox:
                    detail = (
                        f"{_method(imap.auth, imap.username)} on {imap.host}:"
                        f"{imap.effective_port}; folder {imap.folder!r} opened "
                        f"(UIDVALIDITY {inbox.uidvalidity})"
                    )
                results.append(CheckResult("IMAP", True, detail))
            except IntakeError as exc:
                results.append(CheckResult("IMAP", False, str(exc)))
    elif settings.maildir is not None:
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
            with Mailer(smtp).connect() as connection:
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
