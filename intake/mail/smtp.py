"""Sending mail over SMTP: acknowledgements and digests.

TLS certificates are verified (``ssl`` and ``starttls``); there is no silent fall
back to plain text. Every failure becomes :class:`DeliveryError` with the server's
answer, and the password never appears in it.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from email.message import EmailMessage
from typing import TYPE_CHECKING

from ..config import SmtpSettings
from ..errors import ConfigError, DeliveryError

if TYPE_CHECKING:
    from .oauth import TokenSources  # imported when first used: it loads cryptography

__all__ = ["Mailer", "SmtpConnection"]

_ERRORS = (smtplib.SMTPException, OSError, socket.timeout, ssl.SSLError)


class Mailer:
    """Opens SMTP connections for the configured server."""

    def __init__(self, settings: SmtpSettings, tokens: TokenSources | None = None) -> None:
        self.settings = settings
        # Where an OAuth2 access token comes from: the App's, shared with IMAP and kept
        # across connections; a private one when none is given.
        self.tokens = tokens

    @property
    def sender(self) -> str:
        return self.settings.sender

    @property
    def domain(self) -> str:
        """The domain our own Message-IDs use: that of the From address."""
        return self.settings.sender.rpartition("@")[2].strip(">").lower() or "localhost"

    @contextmanager
    def connect(self) -> Iterator[SmtpConnection]:
        s = self.settings
        where = f"{s.host}:{s.effective_port}"
        try:
            s.require_secrets()  # an unset variable is named as such, not as a refused login
        except ConfigError as exc:
            raise DeliveryError(str(exc)) from exc
        source = None
        token_errors: tuple[type[Exception], ...] = ()  # raised by OAuth2 sign-in only
        if s.auth == "oauth2" and s.oauth2:
            from . import oauth  # sign-in with OAuth2: only then is it loaded

            token_errors = (oauth.TokenError,)
            if self.tokens is None:
                self.tokens = oauth.TokenSources()
            source = self.tokens.source_for(s.oauth2)
        client: smtplib.SMTP | None = None
        try:
            token = source.access_token() if source is not None else None
            if s.security == "ssl":
                client = smtplib.SMTP_SSL(
                    s.host,
                    s.effective_port,
                    timeout=s.timeout_s,
                    context=ssl.create_default_context(),
                )
            else:
                client = smtplib.SMTP(s.host, s.effective_port, timeout=s.timeout_s)
                if s.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
            if token is not None:
                from .oauth import smtp_xoauth2

                smtp_xoauth2(client, s.username, token)
            elif s.username:
                client.login(s.username, s.password)
        except token_errors as exc:
            raise DeliveryError(f"cannot sign in to the SMTP server {where}: {exc}") from exc
        except smtplib.SMTPAuthenticationError as exc:
            if client is not None:
                client.close()
            if source is not None:
                source.invalidate()  # the next attempt asks for a new token
            said = exc.smtp_error
            text = said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
            from .oauth import login_refused  # it explains a refused password as well

            raise DeliveryError(login_refused("smtp", s, where, f"{exc.smtp_code} {text}")) from exc
        except _ERRORS as exc:
            if client is not None:
                client.close()  # e.g. a server that offers no STARTTLS: never go on in plain text
            raise DeliveryError(f"cannot connect to the SMTP server {where}: {exc}") from exc
        try:
            yield SmtpConnection(client, where)
        finally:
            try:
                client.quit()
            except _ERRORS:
                client.close()


class SmtpConnection:
    """One open SMTP session."""

    def __init__(self, client: smtplib.SMTP, where: str) -> None:
        self.client = client
        self.where = where

    def send(self, message: EmailMessage, recipients: Sequence[str], envelope_from: str) -> None:
        """Hand one message to the server; returns only once the server accepted it."""
        try:
            refused = self.client.send_message(
                message, from_addr=envelope_from, to_addrs=list(recipients)
            )
        except _ERRORS as exc:
            raise DeliveryError(
                f"the SMTP server {self.where} did not accept the message: {exc}"
            ) from exc
        if refused:
            raise DeliveryError(f"the SMTP server {self.where} refused {sorted(refused)}")
