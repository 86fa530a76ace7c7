"""A recording SMTP server for tests that accepts ``AUTH XOAUTH2`` with one bearer token.

Password logins (PLAIN, LOGIN) are always refused with :attr:`password_reply`
(by default Microsoft's "basic authentication is disabled"), and a wrong token
gets the XOAUTH2 JSON error challenge followed by :attr:`token_reply`. MAIL FROM
is refused until the client signed in. Both replies and the token can be
changed while the server runs.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from dataclasses import dataclass
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from tests.support.lifecycle import StartStop

__all__ = ["XOAuth2SmtpServer"]

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Received:
    auth_user: str
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes


class _Handler:
    def __init__(self, server: XOAuth2SmtpServer) -> None:
        self._server = server

    async def auth_XOAUTH2(self, smtp: SMTP, args: list[str]) -> AuthResult:  # noqa: N802
        srv = self._server
        if len(args) > 1:
            blob = base64.b64decode(args[1])
        else:
            answer = await smtp.challenge_auth("")
            if not isinstance(answer, bytes):
                return AuthResult(success=False, handled=True)
            blob = answer
        fields = dict(
            part.split("=", 1) for part in blob.decode("utf-8").split("\x01") if "=" in part
        )
        user, auth = fields.get("user", ""), fields.get("auth", "")
        if user == srv.username and auth == f"Bearer {srv.token}":
            return AuthResult(success=True, auth_data=user)
        error = {"status": "401", "schemes": "bearer", "scope": "https://mail.example/"}
        await smtp.challenge_auth(json.dumps(error).encode())
        return AuthResult(success=False, handled=False, message=srv.token_reply)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not session.authenticated:
            return "530 5.7.57 Client not authenticated to send mail"
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        assert isinstance(raw, bytes)
        with self._server._lock:
            self._server.received.append(
                Received(
                    str(session.auth_data or ""),
                    envelope.mail_from or "",
                    tuple(envelope.rcpt_tos),
                    raw,
                )
            )
        return "250 2.0.0 OK"


class XOAuth2SmtpServer(StartStop):
    def __init__(self, *, username: str, token: str) -> None:
        self.username = username
        self.token = token
        self.password_reply = (
            "535 5.7.139 Authentication unsuccessful, basic authentication is disabled."
        )
        self.token_reply = "535 5.7.3 Authentication unsuccessful"
        self.received: list[Received] = []
        self._lock = threading.Lock()
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            self.port: int = sock.getsockname()[1]
        self.host = HOST
        self._controller: Controller | None = None

    def _password(self, *_args: Any) -> AuthResult:
        return AuthResult(success=False, handled=False, message=self.password_reply)

    def start(self) -> XOAuth2SmtpServer:
        controller = Controller(
            _Handler(self),
            hostname=HOST,
            port=self.port,
            server_hostname="smtp.intake.test",
            ready_timeout=10.0,
            authenticator=self._password,
            auth_require_tls=False,
        )
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()
