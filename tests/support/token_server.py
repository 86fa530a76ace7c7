"""A loopback OAuth2 authorization server for tests (RFC 6749, 7636, 8628, 7523).

:class:`TokenServer` listens on ``127.0.0.1:<free port>`` in a thread and speaks
just enough of the token protocol for the client code to be tested against it:

* ``POST /token`` with ``grant_type`` ``client_credentials`` (client secret, or a
  ``client_assertion`` JWT signed by a registered certificate), ``refresh_token``
  (strict rotation: each use returns a new refresh token and the old one is then
  refused with ``invalid_grant``), the device-code grant (``authorization_pending``
  ``device_pending`` times, then success) and ``authorization_code`` with PKCE;
* ``POST /devicecode``: starts a device flow (``interval`` 0, so tests do not wait);
* ``GET /authorize``: "signs the user in" at once and redirects (302) to the
  client's ``redirect_uri`` with ``code`` and ``state``.

Error answers look like Microsoft's (``error`` plus an ``AADSTS`` description).
``fail_next`` makes the next token request fail with a chosen error;
:meth:`revoke_all` invalidates every refresh token. ``requests`` records each
token request's form (for assertions; it holds secrets, so never print it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support.lifecycle import StartStop

__all__ = ["TokenServer"]

HOST = "127.0.0.1"


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class _Pending:
    client_id: str
    polls_left: int


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str


@dataclass
class _State:
    clients: dict[str, str]
    public_clients: set[str]
    certificates: dict[str, rsa.RSAPublicKey] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # token -> client_id
    device_codes: dict[str, _Pending] = field(default_factory=dict)
    codes: dict[str, _Code] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)


class TokenServer(StartStop):
    """See the module docstring.

    Args:
        clients: confidential clients, ``{client_id: client_secret}``.
        public_clients: client IDs that may use the device flow without a secret.
        access_token: hand out this access token every time (so a mail server
            configured with it accepts it); a fresh random one each time if None.
        expires_in: the lifetime announced for access tokens, in seconds.
        device_pending: how many device-code polls answer ``authorization_pending``.
        rotate: hand out a new refresh token on every refresh (and refuse the old).
    """

    def __init__(
        self,
        *,
        clients: dict[str, str] | None = None,
        public_clients: set[str] | None = None,
        access_token: str | None = None,
        expires_in: int = 3600,
        device_pending: int = 2,
        rotate: bool = True,
    ) -> None:
        self.state = _State(dict(clients or {}), set(public_clients or ()))
        self.access_token = access_token
        self.expires_in = expires_in
        self.device_pending = device_pending
        self.rotate = rotate
        self.fail_next: tuple[int, str, str] | None = None
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> TokenServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # keep test output quiet (and free of secrets)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                form = {
                    k: v[0]
                    for k, v in urllib.parse.parse_qs(
                        self.rfile.read(length).decode("ascii"), keep_blank_values=True
                    ).items()
                }
                path = urllib.parse.urlsplit(self.path).path
                status, body = server._post(path, form)
                self._send(status, json.dumps(body).encode(), "application/json")

            def do_GET(self) -> None:  # noqa: N802
                parts = urllib.parse.urlsplit(self.path)
                if parts.path != "/authorize":
                    self._send(404, b"not found", "text/plain")
                    return
                query = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query).items()}
                location = server._authorize(query)
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._httpd = ThreadingHTTPServer((HOST, 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # ------------------------------------------------------------------ addresses

    @property
    def url(self) -> str:
        assert self._httpd is not None, "not started"
        return f"http://{HOST}:{self._httpd.server_address[1]}"

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    @property
    def device_url(self) -> str:
        return f"{self.url}/devicecode"

    @property
    def authorize_url(self) -> str:
        return f"{self.url}/authorize"

    # ------------------------------------------------------------------ test controls

    def register_certificate(self, client_id: str, public_key: rsa.RSAPublicKey) -> None:
        with self._lock:
            self.state.certificates[client_id] = public_key

    def seed_refresh_token(self, client_id: str) -> str:
        """A valid refresh token, as if the user had signed in already."""
        token = "rt-" + secrets.token_urlsafe(24)
        with self._lock:
            self.state.refresh_tokens[token] = client_id
        return token

    def revoke_all(self) -> None:
        with self._lock:
            self.state.refresh_tokens.clear()

    def valid_refresh_tokens(self) -> set[str]:
        with self._lock:
            return set(self.state.refresh_tokens)

    @property
    def requests(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self.state.requests)

    def grants(self) -> list[str]:
        return [form.get("grant_type", "") for form in self.requests]

    # ------------------------------------------------------------------ protocol

    def _error(self, status: int, error: str, description: str) -> tuple[int, dict[str, Any]]:
        return status, {"error": error, "error_description": description}

    def _issue(self, client_id: str, *, refresh: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "access_token": self.access_token or "at-" + secrets.token_urlsafe(24),
        }
        if refresh:
            token = "rt-" + secrets.token_urlsafe(24)
            self.state.refresh_tokens[token] = client_id
            body["refresh_token"] = token
        return body

    def _client_ok(self, form: dict[str, str], *, public_ok: bool) -> bool:
        client_id = form.get("client_id", "")
        assertion = form.get("client_assertion")
        if assertion is not None:
            return self._assertion_ok(client_id, assertion)
        if client_id in self.state.clients:
            return form.get("client_secret") == self.state.clients[client_id]
        return public_ok and client_id in self.state.public_clients

    def _assertion_ok(self, client_id: str, assertion: str) -> bool:
        key = self.state.certificates.get(client_id)
        try:
            head, claims, signature = assertion.split(".")
            payload = json.loads(_b64url_decode(claims))
        except ValueError:
            return False
        if key is None or payload.get("iss") != client_id or payload.get("sub") != client_id:
            return False
        if payload.get("aud") != self.token_url:
            return False
        try:
            key.verify(
                _b64url_decode(signature),
                f"{head}.{claims}".encode("ascii"),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except Exception:
            return False
        return True

    def _post(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if path == "/devicecode":
                return self._device_start(form)
            if path != "/token":
                return 404, {"error": "not_found"}
            self.state.requests.append(dict(form))
            if self.fail_next is not None:
                status, error, description = self.fail_next
                self.fail_next = None
                return self._error(status, error, description)
            grant = form.get("grant_type")
            if grant == "client_credentials":
                if not self._client_ok(form, public_ok=False):
                    return self._error(
                        401, "invalid_client", "AADSTS7000215: Invalid client secret provided."
                    )
                return 200, self._issue(form["client_id"], refresh=False)
            if grant == "refresh_token":
                if not self._client_ok(form, public_ok=True):
                    return self._error(401, "invalid_client", "AADSTS7000215: Invalid client.")
                token = form.get("refresh_token", "")
                if self.state.refresh_tokens.get(token) != form.get("client_id"):
                    return self._error(
                        400,
                        "invalid_grant",
                        "AADSTS700082: The refresh token has expired due to inactivity.",
                    )
                if self.rotate:
                    del self.state.refresh_tokens[token]
                    return 200, self._issue(form["client_id"], refresh=True)
                return 200, self._issue(form["client_id"], refresh=False)
            if grant == "urn:ietf:params:oauth:grant-type:device_code":
                return self._device_poll(form)
            if grant == "authorization_code":
                return self._redeem_code(form)
            return self._error(400, "unsupported_grant_type", f"grant {grant!r}")

    def _device_start(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        device_code = "dc-" + secrets.token_urlsafe(16)
        self.state.device_codes[device_code] = _Pending(
            form.get("client_id", ""), self.device_pending
        )
        return 200, {
            "device_code": device_code,
            "user_code": "ABCD-EFGH",
            "verification_uri": f"{self.url}/device",
            "expires_in": 60,
            "interval": 0,
            "message": f"To sign in, open {self.url}/device and enter the code ABCD-EFGH.",
        }

    def _device_poll(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        pending = self.state.device_codes.get(form.get("device_code", ""))
        if pending is None:
            return self._error(400, "expired_token", "AADSTS70020: The device code expired.")
        if not self._client_ok(form, public_ok=True) or pending.client_id != form["client_id"]:
            return self._error(400, "invalid_client", "AADSTS700016: Application not found.")
        if pending.polls_left > 0:
            pending.polls_left -= 1
            return self._error(400, "authorization_pending", "AADSTS70016: Pending.")
        del self.state.device_codes[form["device_code"]]
        return 200, self._issue(pending.client_id, refresh=True)

    def _authorize(self, query: dict[str, str]) -> str:
        code = "code-" + secrets.token_urlsafe(16)
        with self._lock:
            self.state.codes[code] = _Code(
                query.get("client_id", ""),
                query.get("redirect_uri", ""),
                query.get("code_challenge", ""),
            )
        params = urllib.parse.urlencode({"code": code, "state": query.get("state", "")})
        return f"{query.get('redirect_uri', '')}?{params}"

    def _redeem_code(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        issued = self.state.codes.pop(form.get("code", ""), None)
        if issued is None or not self._client_ok(form, public_ok=True):
            return self._error(400, "invalid_grant", "The code is not valid.")
        verifier = form.get("code_verifier", "").encode("ascii")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        if challenge.decode("ascii") != issued.challenge:
            return self._error(400, "invalid_grant", "PKCE verification failed.")
        if form.get("redirect_uri") != issued.redirect_uri:
            return self._error(400, "invalid_grant", "redirect_uri mismatch.")
        return 200, self._issue(issued.client_id, refresh=True)
