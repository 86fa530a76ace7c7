"""Erasing personal data: one registry of per-table erasers, run by purge and erase.

Every table that holds personal data about a submission registers an *eraser* here
with :func:`register_eraser`: a function that, given submission ids, deletes or
blanks what its table holds about them and returns how many rows it changed. A new
table (a search index, question tags) registers its own eraser in its own module,
and ``intake purge``, ``intake erase`` and ``[retention] purge_after_days`` cover it
with no other change. :func:`erase_submissions` runs them all.

Two depths: *content* (raw mail, files, texts, headers, free-text notes) is always
erased; with ``anonymise`` the identity goes too (names, addresses, subjects). The
reference, Message-ID, SHA-256, times and timeliness stay, so the same message is
never taken in again and the counts still add up.

On SQLite, deleted content is zeroed in the file (``secure_delete``, set on every
connection by :mod:`store.db`) and :func:`settle` empties the write-ahead log, so
erased text is gone from the database files, not just hidden.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from sqlalchemy import (
    ColumnElement,
    Engine,
    and_,
    case,
    delete,
    func,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from .models import Ack, AckStatus, Attachment, AuditEvent, RawMessage, Submission, SubmissionStatus
from .parts import SkippedPartRow

__all__ = [
    "Eraser",
    "erase_submissions",
    "erasers",
    "ids_before",
    "ids_for_address",
    "ids_mentioning",
    "register_eraser",
    "settle",
]

Eraser = Callable[[Session, Sequence[int], bool], int]
"""(session, submission ids, anonymise) -> rows changed. Runs inside the caller's transaction."""

_ERASERS: dict[str, Eraser] = {}
_CHUNK = 500


def register_eraser(table: str) -> Callable[[Eraser], Eraser]:
    """Register the eraser of ``table`` (a decorator); a second one for a table replaces it."""

    def add(function: Eraser) -> Eraser:
        _ERASERS[table] = function
        return function

    return add


def erasers() -> dict[str, Eraser]:
    """The registered erasers by table name, in registration order."""
    return dict(_ERASERS)


def erase_submissions(session: Session, ids: Sequence[int], *, anonymise: bool) -> dict[str, int]:
    """Run every registered eraser over these submissions; rows changed per table.

    The caller commits (and then calls :func:`settle`).
    """
    counts = dict.fromkeys(_ERASERS, 0)
    ids = sorted(set(ids))
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        for table, eraser in _ERASERS.items():
            counts[table] += eraser(session, chunk, anonymise)
    session.flush()
    return counts


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _when() -> ColumnElement[dt.datetime]:
    """The instant a submission is dated by: when received, else when the server or we got it."""
    return func.coalesce(Submission.received_at, Submission.internal_date, Submission.fetched_at)


def ids_before(session: Session, before: dt.datetime, *, anonymise: bool) -> list[int]:
    """Submissions (any kind or status, read or not) dated before ``before`` with data left.

    Already purged ones come back only when ``anonymise`` and they still name someone.
    """
    identity = or_(
        Submission.sender_email.is_not(None),
        Submission.sender_name.is_not(None),
        Submission.reply_to.is_not(None),
        Submission.subject.is_not(None),
    )
    left = Submission.status != SubmissionStatus.PURGED
    if anonymise:
        left = or_(left, identity)
    query = select(Submission.id).where(_when() < before, left).order_by(Submission.id)
    return list(session.scalars(query))


def ids_for_address(session: Session, address: str) -> list[int]:
    """Submissions from, replying to or acknowledged to ``address``, and bounces of those acks."""
    address = address.strip().lower()
    to_them = select(Ack.submission_id).where(func.lower(Ack.to_addr) == address)
    theirs = select(Submission.id).where(
        or_(
            func.lower(Submission.sender_email) == address,
            func.lower(Submission.reply_to) == address,
            Submission.id.in_(to_them),
        )
    )
    their_acks = select(Ack.id).where(
        or_(Ack.submission_id.in_(theirs), func.lower(Ack.to_addr) == address)
    )
    query = (
        select(Submission.id)
        .where(or_(Submission.id.in_(theirs), Submission.bounced_ack_id.in_(their_acks)))
        .order_by(Submission.id)
    )
    return list(session.scalars(query))


def ids_mentioning(session: Session, needle: str, exclude: Sequence[int] = ()) -> list[int]:
    """Other submissions whose body, headers or attachment text mention ``needle``.

    For staff to judge (someone else's response may quote a person): never erased
    by :func:`ids_for_address` on its own.
    """
    escaped = needle.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    in_files = select(Attachment.submission_id).where(
        func.lower(Attachment.text).like(pattern, escape="\\")
    )
    query = (
        select(Submission.id)
        .where(
            or_(
                func.lower(Submission.body_text).like(pattern, escape="\\"),
                func.lower(Submission.headers_json).like(pattern, escape="\\"),
                Submission.id.in_(in_files),
            )
        )
        .order_by(Submission.id)
    )
    if exclude:
        query = query.where(Submission.id.not_in(list(exclude)))
    return list(session.scalars(query))


# --- the erasers of the core tables ------------------------------------------------


@register_eraser("raw_messages")
def _raw_messages(session: Session, ids: Sequence[int], anonymise: bool) -> int:
    return _rowcount(session.execute(delete(RawMessage).where(RawMessage.submission_id.in_(ids))))


@register_eraser("attachments")
def _attachments(session: Session, ids: Sequence[int], anonymise: bool) -> int:
    return _rowcount(session.execute(delete(Attachment).where(Attachment.submission_id.in_(ids))))


@register_eraser("skipped_parts")
def _skipped_parts(session: Session, ids: Sequence[int], anonymise: bool) -> int:
    return _rowcount(
        session.execute(delete(SkippedPartRow).where(SkippedPartRow.submission_id.in_(ids)))
    )


@register_eraser("acks")
def _acks(session: Session, ids: Sequence[int], anonymise: bool) -> int:
    """Acknowledgements not yet sent are cancelled; with ``anonymise`` addresses go too."""
    waiting = [AckStatus.PENDING, AckStatus.SENDING, AckStatus.NONE]
    cancelled = session.execute(
        update(Ack)
        .where(Ack.submission_id.in_(ids), Ack.status.in_(waiting))
        .values(status=AckStatus.CANCELLED, reason="cancelled: the response was erased")
        .execution_options(synchronize_session=False)
    )
    changed = _rowcount(cancelled)
    if anonymise:
        # A failure reason can quote the address (an SMTP refusal, the rate limit).
        kept = case((Ack.status == AckStatus.CANCELLED, Ack.reason), else_=None)
        changed = _rowcount(
            session.execute(
                update(Ack)
                .where(Ack.submission_id.in_(ids))
                .values(to_addr=None, requested_by=None, reason=kept)
                .execution_options(synchronize_session=False)
            )
        )
    return changed


@register_eraser("submissions")
def _submissions(session: Session, ids: Sequence[int], anonymise: bool) -> int:
    values: dict[str, object] = {
        "status": SubmissionStatus.PURGED,
        "body_text": None,
        "headers_json": None,
        "error": None,
        "timeliness_override_reason": None,
    }
    if anonymise:
        values |= {
            "sender_email": None,
            "sender_name": None,
            "reply_to": None,
            "subject": None,
            "source": "erased",
        }
    result = session.execute(
        update(Submission)
        .where(Submission.id.in_(ids))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


@register_eraser("audit_events")
def _audit_events(session: Session, ids: Sequence[int], anonymise: bool) -> int:
    """Notes people wrote about these submissions (reasons, overrides) are blanked."""
    references = select(Submission.reference).where(Submission.id.in_(ids))
    result = session.execute(
        update(AuditEvent)
        .where(and_(AuditEvent.reference.in_(references), AuditEvent.detail != ""))
        .values(detail="")
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result)


def settle(engine: Engine) -> bool:
    """Make erased data leave the database files; False when that could not finish now.

    SQLite: checkpoint the write-ahead log into the main file and truncate it (old
    copies of pages live there). PostgreSQL: VACUUM the erased tables so dead row
    versions are removed (their space is overwritten as it is reused).
    """
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            busy = connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)")).first()
            connection.commit()
        return busy is None or int(busy[0]) == 0
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for table in _ERASERS:
                if inspect(connection).has_table(table):
                    connection.execute(text(f'VACUUM "{table}"'))
    return True
