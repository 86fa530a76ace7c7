"""A recording SMTP server for tests, built on aiosmtpd's threaded ``Controller``.

:class:`SmtpServer` listens on ``127.0.0.1`` on a free port (kept across
:meth:`SmtpServer.stop`/:meth:`SmtpServer.start`, so an outage can be simulated),
records every accepted message and can be switched into fault modes:

* ``server.refuse = True`` -- answer ``451 4.3.0`` at the stage named by
  ``server.refuse_at`` (``"RCPT"`` by default; ``"MAIL"`` or ``"DATA"`` also work).
  With smtplib, refusal at RCPT raises ``smtplib.SMTPRecipientsRefused``, at DATA
  ``smtplib.SMTPDataError`` and at MAIL ``smtplib.SMTPSenderRefused`` (the last two
  are ``SMTPResponseException`` subclasses with ``smtp_code == 451``).
* ``server.delay_s = 5.0`` -- wait that long before answering the end of DATA, so
  a client with a shorter timeout sees a timeout.  A message whose client has
  disconnected by then (or that straddles :meth:`SmtpServer.clear`) is not recorded.
* ``server.deliver_late = True`` (with ``delay_s``) -- record the message even when
  the client gave up waiting for the reply, as a real server does once it has the
  whole message: the client sees a timeout, the recipient gets the mail.
* ``server.stop()`` -- connections are refused until ``server.start()``.

Optional AUTH (PLAIN/LOGIN without TLS): pass ``username`` and ``password``.  With
``auth_required=True`` MAIL FROM is refused with ``530 5.7.0`` until the client
authenticated.  aiosmtpd's own ``auth_required`` flag is deliberately not used: it
emits a ``UserWarning`` ("Requiring AUTH while not requiring TLS ...") which fails
tests running with ``filterwarnings = error``; the requirement is enforced in the
``MAIL`` hook instead, which is equivalent for clients.

Typical pytest usage::

    @pytest.fixture(scope="session")
    def smtp_server() -> Iterator[SmtpServer]:
        with SmtpServer() as server:
            yield server

    @pytest.fixture
    def smtp(smtp_server: SmtpServer) -> SmtpServer:
        smtp_server.reset()   # clear messages and fault modes
        return smtp_server
"""

from __future__ import annotations

import asyncio
import email.policy
import socket
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.lifecycle import StartStop

__all__ = ["ReceivedMessage", "SmtpServer"]

HOST = "127.0.0.1"

RefuseStage = Literal["MAIL", "RCPT", "DATA"]


@dataclass(frozen=True)
class ReceivedMessage:
    """One message accepted by :class:`SmtpServer`.

    ``raw`` is the DATA exactly as received (CRLF line endings, dot-unstuffed);
    ``message`` is ``raw`` parsed with ``email.policy.default`` after CRLF -> LF.
    """

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes = field(repr=False)
    message: EmailMessage = field(repr=False)
    auth_user: str | None = None
    peer: Any = None

    @property
    def subject(self) -> str | None:
        """Decoded ``Subject`` header (``None`` when absent)."""
        value = self.message["Subject"]
        return None if value is None else str(value)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class _Handler:
    """aiosmtpd handler; all state lives in the owning :class:`SmtpServer`."""

    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    def _refusal(self, stage: RefuseStage) -> str | None:
        srv = self._server
        if srv.refuse and srv.refuse_at == stage:
            return srv.refuse_reply
        return None

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if self._server.auth_required and not session.authenticated:
            return "530 5.7.0 Authentication required"
        refusal = self._refusal("MAIL")
        if refusal:
            return refusal
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        refusal = self._refusal("RCPT")
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        srv = self._server
        generation = srv._generation
        if srv.delay_s > 0 and srv.deliver_late:
            # A real server that has the whole message queues it, then answers: the
            # message is delivered even if the client stops waiting for the answer.
            answer = self._accept(session, envelope)
            await asyncio.sleep(srv.delay_s)
            return answer
        if srv.delay_s > 0:
            await asyncio.sleep(srv.delay_s)
            transport = server.transport
            gone = transport is None or transport.is_closing()
            if generation != srv._generation or gone:
                # The client gave up (timed out) or the test reset the server meanwhile:
                # don't record a message nobody was told was accepted.
                return "451 4.4.2 Timed out"
        return self._accept(session, envelope)

    def _accept(self, session: Session, envelope: Envelope) -> str:
        srv = self._server
        refusal = self._refusal("DATA")
        if refusal:
            return refusal
        raw = envelope.original_content or b""
        if isinstance(raw, str):  # only with decode_data=True, which we don't use
            raw = raw.encode("utf-8", "surrogateescape")
        # Parse with LF line endings so get_content() gives "\n" like a parsed file would.
        parsed = BytesParser(policy=email.policy.default).parsebytes(raw.replace(b"\r\n", b"\n"))
        assert isinstance(parsed, EmailMessage)
        auth_user = None
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            auth_user = session.auth_data.login.decode("utf-8", "replace")
        srv._record(
            ReceivedMessage(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                raw=raw,
                message=parsed,
                auth_user=auth_user,
                peer=session.peer,
            )
        )
        return "250 2.0.0 Message accepted for delivery"


class SmtpServer(StartStop):
    """Recording SMTP server on ``127.0.0.1:<port>`` (see module docstring).

    Args:
        port: TCP port; a free one is chosen when omitted and kept for restarts.
        username, password: enable AUTH PLAIN/LOGIN with these credentials.
        auth_required: refuse MAIL FROM before successful AUTH (needs credentials).

    Attributes that can be changed at any time (also while running):
        refuse, refuse_at, refuse_reply, delay_s, deliver_late, auth_required.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        auth_required: bool = False,
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        if auth_required and username is None:
            raise ValueError("auth_required needs username and password")
        self._port = port if port is not None else _free_port()
        self._username = username
        self._password = password
        self.auth_required = auth_required
        self.refuse = False
        self.refuse_at: RefuseStage = "RCPT"
        self.refuse_reply = "451 4.3.0 Temporary failure, please try again later"
        self.delay_s = 0.0
        self.deliver_late = False
        self._messages: list[ReceivedMessage] = []
        self._generation = 0  # bumped by clear(); late (delayed) deliveries are dropped
        self._cond = threading.Condition()
        self._controller: Controller | None = None

    # ------------------------------------------------------------------ properties

    @property
    def host(self) -> str:
        """Always ``127.0.0.1``."""
        return HOST

    @property
    def port(self) -> int:
        """The SMTP port."""
        return self._port

    @property
    def username(self) -> str | None:
        """AUTH user name, if AUTH is enabled."""
        return self._username

    @property
    def password(self) -> str | None:
        """AUTH password, if AUTH is enabled."""
        return self._password

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._controller is not None

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A snapshot (copy) of the messages received so far, oldest first."""
        with self._cond:
            return list(self._messages)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SmtpServer:
        """Start listening (no-op if running); returns self."""
        if self._controller is not None:
            return self
        kwargs: dict[str, Any] = {}
        if self._username is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        self._wait_port_bindable(timeout=10.0)
        controller = Controller(
            _Handler(self),
            hostname=HOST,
            port=self._port,
            server_hostname="smtp.intake.test",  # avoids a getfqdn() DNS lookup
            ready_timeout=10.0,
            **kwargs,
        )
        try:
            controller.start()
        except BaseException:
            controller.stop(no_assert=True)
            if not controller.loop.is_closed():
                controller.loop.close()  # else: ResourceWarning "unclosed event loop"
            raise
        self._controller = controller
        return self

    def _wait_port_bindable(self, timeout: float) -> None:
        """Fail fast (aiosmtpd would wait its whole ready_timeout) if the port is taken."""
        deadline = time.monotonic() + timeout
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((HOST, self._port))
                    return
                except OSError:
                    if time.monotonic() > deadline:
                        raise
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop listening (connections are refused until :meth:`start`); keeps messages."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    def restart(self) -> SmtpServer:
        """:meth:`stop` then :meth:`start` on the same port; returns self."""
        self.stop()
        return self.start()

    # ------------------------------------------------------------------ recording

    def _record(self, message: ReceivedMessage) -> None:
        with self._cond:
            self._messages.append(message)
            self._cond.notify_all()

    def clear(self) -> None:
        """Forget all recorded messages."""
        with self._cond:
            self._messages.clear()
            self._generation += 1

    def reset(self) -> None:
        """Forget messages and switch off all fault modes (for per-test fixtures)."""
        self.clear()
        self.refuse = False
        self.refuse_at = "RCPT"
        self.delay_s = 0.0
        self.deliver_late = False

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Block until at least *count* messages were received; return them all.

        Raises ``TimeoutError`` (with the number received) after *timeout* seconds.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._messages) >= count, timeout):
                raise TimeoutError(
                    f"expected {count} message(s) within {timeout}s, got {len(self._messages)}"
                )
            return list(self._messages)

    # ------------------------------------------------------------------ AUTH

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        if (
            isinstance(auth_data, LoginPassword)
            and self._username is not None
            and self._password is not None
            and auth_data.login == self._username.encode("utf-8")
            and auth_data.password == self._password.encode("utf-8")
        ):
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)
