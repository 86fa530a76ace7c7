"""Staff accounts for the web view: users, sign-in attempts, private notes, the cookie key
(and the one index the web view's list needs).

Password hashing is not done here (``intake/web/auth.py`` owns it); this module only
stores the hash. Sign-in attempts are kept so that a burst of failures for one account
or from one address can be refused, across restarts and across several web processes.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String, Text, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from .base import partial_index
from .errors import NotFound
from .models import Attachment, Base, Submission, UTCDateTime

__all__ = [
    "ROLES",
    "LoginAttempt",
    "Note",
    "User",
    "WebKey",
    "add_note",
    "add_user",
    "end_sessions",
    "failures_since",
    "find_user",
    "list_users",
    "notes_for",
    "record_attempt",
    "remove_user",
    "set_password",
    "web_key",
]

ROLES = ("staff", "admin")


class User(Base):
    """A member of staff who may sign in to the web view."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # Bumped by a password reset: sessions signed before it are no longer accepted.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class LoginAttempt(Base):
    """One sign-in attempt, kept for rate limiting (per account and per address)."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_email_at", "email", "at"),
        Index("ix_login_attempts_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    email: Mapped[str] = mapped_column(String(320))
    address: Mapped[str] = mapped_column(String(100))
    ok: Mapped[bool] = mapped_column(default=False)


class Note(Base):
    """A private note a member of staff wrote about a submission (never sent anywhere)."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), index=True
    )
    author: Mapped[str] = mapped_column(String(320))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    text: Mapped[str] = mapped_column(Text)


class WebKey(Base):
    """A generated secret kept in the database (the cookie-signing key when none is set)."""

    __tablename__ = "web_keys"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


# The web view's list, counts, chart and filters read only these columns, so two covering
# indexes answer them without reading the wide rows (body text, headers): (kind,
# received_at, id) orders the list (PostgreSQL needs the id in it to match the order
# exactly) and counts date ranges; the other groups the counts.
Index("ix_submissions_kind_received", Submission.kind, Submission.received_at, Submission.id)
Index(
    "ix_submissions_web_counts",
    Submission.kind,
    Submission.timeliness,
    Submission.status,
    Submission.ack_status,
    Submission.sent_in_time,
)
# "Late but sent in time" is rare: a partial index finds those few without a scan.
partial_index(
    "ix_submissions_sent_in_time",
    Submission.id,
    where={"sqlite": "sent_in_time IS 1", "postgresql": "sent_in_time IS true"},
)
# Unreadable files, by submission, from the index alone.
Index("ix_attachments_status_submission", Attachment.parse_status, Attachment.submission_id)


def _normal(email: str) -> str:
    return email.strip().lower()


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == _normal(email)))


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.email)))


def add_user(session: Session, email: str, role: str, password_hash: str, now: dt.datetime) -> User:
    """Add an account; raises ValueError when the email is taken or the role unknown."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    user = User(email=_normal(email), role=role, password_hash=password_hash, created_at=now)
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise ValueError(f"{_normal(email)} already has an account") from exc
    return user


def remove_user(session: Session, email: str) -> None:
    user = find_user(session, email)
    if user is None:
        raise NotFound(f"no account for {_normal(email)}; see `intake users list`")
    session.delete(user)
    session.flush()


def set_password(session: Session, email: str, password_hash: str) -> User:
    """Replace the password hash and end every session signed in with the old one."""
    user = find_user(session, email)
    if user is None:
        raise NotFound(f"no account for {_normal(email)}; see `intake users list`")
    user.password_hash = password_hash
    user.session_epoch += 1
    session.flush()
    return user


def end_sessions(session: Session, user_id: int) -> None:
    """Sign an account out everywhere (its signed cookies stop being accepted)."""
    user = session.get(User, user_id)
    if user is not None:
        user.session_epoch += 1
        session.flush()


def record_attempt(session: Session, email: str, address: str, ok: bool, now: dt.datetime) -> None:
    session.add(LoginAttempt(at=now, email=_normal(email)[:320], address=address[:100], ok=ok))
    # Old attempts are no use to the rate limit: keep the table small.
    session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - dt.timedelta(days=1)))


def failures_since(
    session: Session, since: dt.datetime, *, email: str | None = None, address: str | None = None
) -> int:
    """Failed attempts since ``since`` for one account or from one address."""
    query = (
        select(func.count())
        .select_from(LoginAttempt)
        .where(LoginAttempt.at >= since, LoginAttempt.ok.is_(False))
    )
    if email is not None:
        query = query.where(LoginAttempt.email == _normal(email))
    if address is not None:
        query = query.where(LoginAttempt.address == address)
    return int(session.scalar(query) or 0)


def add_note(
    session: Session, submission_id: int, author: str, text: str, now: dt.datetime
) -> Note:
    note = Note(submission_id=submission_id, author=author, text=text, at=now)
    session.add(note)
    session.flush()
    return note


def notes_for(session: Session, submission_id: int) -> list[Note]:
    return list(
        session.scalars(select(Note).where(Note.submission_id == submission_id).order_by(Note.id))
    )


def web_key(session: Session, name: str, make: str, now: dt.datetime) -> str:
    """The stored secret ``name``; stores ``make`` first when there is none (race-safe)."""
    found = session.get(WebKey, name)
    if found is not None:
        return found.value
    session.add(WebKey(name=name, value=make, created_at=now))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()  # another process stored one first: use theirs
        stored = session.get(WebKey, name)
        assert stored is not None
        return stored.value
    return make
