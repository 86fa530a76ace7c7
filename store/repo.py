"""Every query and write, as functions that take a Session. No SQL anywhere else.

Callers own the transaction: functions here flush but only :func:`store_raw`
commits, because storing the raw message durably is the one step that must finish
before anything else is attempted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .errors import NotFound
from .models import Ack, Attachment, AuditEvent, RawMessage, Sighting, Submission, SubmissionStatus

__all__ = [
    "StoredRaw",
    "audit",
    "get_by_reference",
    "known_uids",
    "load_raw",
    "mark_flagged",
    "needs_rereading",
    "pending_ids",
    "save_reading",
    "select_acks",
    "select_submissions",
    "store_raw",
    "uid_watermark",
    "unflagged_uids",
]


@dataclass(frozen=True, slots=True)
class StoredRaw:
    """The outcome of storing one raw message."""

    submission_id: int
    reference: str
    created: bool  # False: this message was already stored (a second sighting)


def _existing(
    session: Session, message_id: str, sha256: str, key: tuple[str, int, int] | None
) -> Submission | None:
    if key is not None:
        found = session.scalar(
            select(Submission)
            .join(Sighting)
            .where(
                Sighting.mailbox == key[0], Sighting.uidvalidity == key[1], Sighting.uid == key[2]
            )
        )
        if found is not None:
            return found
    return session.scalar(
        select(Submission).where(Submission.message_id == message_id, Submission.sha256 == sha256)
    )


def store_raw(
    session: Session,
    *,
    raw: bytes,
    message_id: str,
    message_id_derived: bool,
    source: str,
    fetched_at: dt.datetime,
    reference_prefix: str,
    key: tuple[str, int, int] | None = None,
    internal_date: dt.datetime | None = None,
    size: int | None = None,
    header_only: bool = False,
) -> StoredRaw:
    """Store a message's bytes and where it was seen, then commit.

    A message already stored (same mailbox key, or same Message-ID and SHA-256) is
    not stored again; only the new sighting is recorded.
    """
    sha256 = hashlib.sha256(raw).hexdigest()
    for attempt in range(2):
        existing = _existing(session, message_id, sha256, key)
        try:
            if existing is not None:
                if key is not None and not _has_sighting(session, key):
                    session.add(_sighting(existing.id, key, fetched_at))
                session.commit()
                return StoredRaw(existing.id, existing.reference or "", created=False)
            submission = Submission(
                message_id=message_id,
                message_id_derived=message_id_derived,
                sha256=sha256,
                size=size if size is not None else len(raw),
                source=source,
                fetched_at=fetched_at,
                internal_date=internal_date,
                status=SubmissionStatus.RECEIVED,
                header_only=header_only,
            )
            session.add(submission)
            session.flush()
            submission.reference = f"{reference_prefix}-{submission.id:05d}"
            session.add(RawMessage(submission_id=submission.id, data=raw))
            if key is not None:
                session.add(_sighting(submission.id, key, fetched_at))
            session.commit()
            return StoredRaw(submission.id, submission.reference, created=True)
        except IntegrityError:
            # Another process stored the same message between our look-up and insert.
            session.rollback()
            if attempt:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _has_sighting(session: Session, key: tuple[str, int, int]) -> bool:
    return (
        session.scalar(
            select(Sighting.id).where(
                Sighting.mailbox == key[0], Sighting.uidvalidity == key[1], Sighting.uid == key[2]
            )
        )
        is not None
    )


def _sighting(submission_id: int, key: tuple[str, int, int], at: dt.datetime) -> Sighting:
    return Sighting(
        mailbox=key[0], uidvalidity=key[1], uid=key[2], submission_id=submission_id, seen_at=at
    )


def uid_watermark(session: Session, mailbox: str, uidvalidity: int) -> int:
    """The highest UID stored for this mailbox and UIDVALIDITY (0 when none)."""
    value = session.scalar(
        select(func.max(Sighting.uid)).where(
            Sighting.mailbox == mailbox, Sighting.uidvalidity == uidvalidity
        )
    )
    return int(value or 0)


def known_uids(session: Session, mailbox: str, uidvalidity: int, uids: Iterable[int]) -> set[int]:
    wanted = list(uids)
    found: set[int] = set()
    for start in range(0, len(wanted), 500):
        found.update(
            session.scalars(
                select(Sighting.uid).where(
                    Sighting.mailbox == mailbox,
                    Sighting.uidvalidity == uidvalidity,
                    Sighting.uid.in_(wanted[start : start + 500]),
                )
            )
        )
    return found


def unflagged_uids(session: Session, mailbox: str, uidvalidity: int) -> list[int]:
    """Stored UIDs the server has not yet been told about (e.g. after a crash)."""
    return list(
        session.scalars(
            select(Sighting.uid)
            .where(
                Sighting.mailbox == mailbox,
                Sighting.uidvalidity == uidvalidity,
                Sighting.flagged.is_(False),
            )
            .order_by(Sighting.uid)
        )
    )


def mark_flagged(session: Session, mailbox: str, uidvalidity: int, uids: Sequence[int]) -> None:
    for start in range(0, len(uids), 500):
        session.execute(
            update(Sighting)
            .where(
                Sighting.mailbox == mailbox,
                Sighting.uidvalidity == uidvalidity,
                Sighting.uid.in_(uids[start : start + 500]),
            )
            .values(flagged=True)
        )


def pending_ids(session: Session, limit: int | None = None) -> list[int]:
    """Submissions stored but not yet read, oldest first (also those a crash left)."""
    query = (
        select(Submission.id)
        .where(Submission.status == SubmissionStatus.RECEIVED)
        .order_by(Submission.id)
    )
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))


def load_raw(session: Session, submission_id: int) -> bytes:
    data = session.scalar(select(RawMessage.data).where(RawMessage.submission_id == submission_id))
    if data is None:
        raise NotFound(f"no raw message is stored for submission {submission_id}")
    return bytes(data)


def get_by_reference(session: Session, reference: str) -> Submission:
    found = session.scalar(select(Submission).where(Submission.reference == reference.upper()))
    if found is None:
        raise NotFound(f"no submission has the reference {reference}; see `intake list`")
    return found


def select_submissions(
    *,
    timeliness: str | None = None,
    failed: bool = False,
    since: dt.datetime | None = None,
) -> Select[Submission]:
    """The query behind ``intake list`` and ``intake export``, oldest first."""
    query = select(Submission).where(Submission.kind == "response").order_by(Submission.id)
    if timeliness:
        query = query.where(Submission.timeliness == timeliness)
    if since is not None:
        query = query.where(Submission.received_at >= since)
    if failed:
        query = query.where(needs_rereading())
    return query


# Attachment statuses that mean "no usable text yet"; an empty file is not a failure.
SETTLED_STATUSES = ("ok", "empty")


def needs_rereading() -> ColumnElement[bool]:
    """Submissions whose message or an attachment could not be read."""
    bad = select(Attachment.submission_id).where(Attachment.parse_status.not_in(SETTLED_STATUSES))
    return Submission.status.in_(
        [SubmissionStatus.FAILED, SubmissionStatus.RECEIVED]
    ) | Submission.id.in_(bad)


def select_acks(statuses: Sequence[str] = ()) -> Select[Ack, str | None]:
    """Acknowledgements with their submission's reference, newest first."""
    query = (
        select(Ack, Submission.reference)
        .join(Submission, Submission.id == Ack.submission_id)
        .order_by(Ack.id.desc())
    )
    if statuses:
        query = query.where(Ack.status.in_(list(statuses)))
    return query


def audit(
    session: Session, action: str, reference: str | None, detail: str, at: dt.datetime
) -> None:
    """Record a change a person made or asked for."""
    session.add(AuditEvent(at=at, action=action, reference=reference, detail=detail))


def save_reading(
    session: Session,
    submission_id: int,
    values: dict[str, object],
    attachments: Sequence[dict[str, object]],
) -> Submission:
    """Replace the parsed view of a submission: its fields and all its attachments.

    A staff override of the timeliness survives a re-read.
    """
    submission = session.get(Submission, submission_id)
    if submission is None:
        raise NotFound(f"no submission with id {submission_id}")
    previous = {att.position: att.attempts for att in submission.attachments}
    if submission.timeliness_override_reason:
        values = {k: v for k, v in values.items() if k not in ("timeliness", "sent_in_time")}
    for name, value in values.items():
        setattr(submission, name, value)
    submission.attachments.clear()
    session.flush()
    for record in attachments:
        position = int(str(record["position"]))
        submission.attachments.append(Attachment(**record, attempts=previous.get(position, 0) + 1))
    session.flush()
    return submission
