"""Who is signed in: password hashes, the signed session cookie, CSRF tokens, rate limits.

The session cookie holds only the user's id, the account's session epoch (a password
reset bumps it, ending every session) and the CSRF token, signed and time-stamped with
the server's key. The role is read from the database on every request, so removing an
account or changing its role takes effect at once. A visitor who is not signed in gets a
signed pre-session cookie carrying the CSRF token of the sign-in form.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session, sessionmaker

from store import users as user_store
from store.users import User

from ..config import WebSettings

__all__ = [
    "PRE_COOKIE",
    "SESSION_COOKIE",
    "Signer",
    "Viewer",
    "check_password",
    "hash_password",
    "load_secret",
    "same_token",
]

SESSION_COOKIE = "intake_session"
PRE_COOKIE = "intake_pre"
_HASHER = PasswordHasher()
# Verified when the account does not exist, so a wrong address takes as long as a
# wrong password and does not reveal which accounts exist.
_DUMMY_HASH = _HASHER.hash("not a real password, only for equal timing")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def check_password(user: User | None, password: str) -> bool:
    try:
        return _HASHER.verify(user.password_hash if user else _DUMMY_HASH, password) and bool(user)
    except (VerificationError, InvalidHashError):
        return False


def same_token(expected: str, given: str) -> bool:
    return bool(expected) and hmac.compare_digest(expected.encode(), given.encode())


def load_secret(settings: WebSettings, sessions: sessionmaker[Session], now: dt.datetime) -> str:
    """The key that signs cookies: from the environment, else generated once and stored."""
    if settings.secret_key:
        return settings.secret_key
    with sessions() as session:
        return user_store.web_key(session, "cookie_signing", secrets.token_urlsafe(48), now)


@dataclass(frozen=True)
class Viewer:
    """The signed-in person, for one request."""

    user_id: int
    email: str
    role: str
    csrf: str
    epoch: int

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class Signer:
    """Signs and reads the two cookies."""

    def __init__(self, secret: str, max_age_s: int) -> None:
        self._session = URLSafeTimedSerializer(secret, salt="intake-session")
        self._pre = URLSafeTimedSerializer(secret, salt="intake-pre-session")
        self.max_age_s = max_age_s

    def session_cookie(self, user: User, csrf: str | None = None) -> str:
        return self._session.dumps(
            {"u": user.id, "e": user.session_epoch, "c": csrf or secrets.token_urlsafe(32)}
        )

    def read_session(self, cookie: str | None) -> tuple[int, int, str] | None:
        if not cookie:
            return None
        try:
            data = self._session.loads(cookie, max_age=self.max_age_s)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        user_id, epoch, csrf = data.get("u"), data.get("e"), data.get("c")
        if not isinstance(user_id, int) or not isinstance(epoch, int) or not isinstance(csrf, str):
            return None
        return user_id, epoch, csrf

    def pre_cookie(self, token: str) -> str:
        return self._pre.dumps(token)

    def read_pre(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            token = self._pre.loads(cookie, max_age=3600)
        except BadSignature:
            return None
        return token if isinstance(token, str) else None


def viewer_for(session: Session, read: tuple[int, int, str] | None) -> Viewer | None:
    """The person a valid session cookie names, if the account still exists unchanged."""
    if read is None:
        return None
    user_id, epoch, csrf = read
    user = session.get(User, user_id)
    if user is None or user.session_epoch != epoch:
        return None
    return Viewer(user.id, user.email, user.role, csrf, epoch)
