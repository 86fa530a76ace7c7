"""Queries behind the staff web view: the filtered list, counts, the work queue, the chart.

Every page asks for one page of rows, then for the few extra facts about those rows
(file counts), so that a list of 100,000 submissions costs an indexed count and a
bounded read, never a scan of every attachment.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, or_, select
from sqlalchemy.orm import Session

from .models import Ack, Attachment, AuditEvent, Submission, SubmissionStatus
from .repo import SETTLED_STATUSES, needs_rereading

__all__ = [
    "ListFilter",
    "ListRow",
    "acks_of",
    "arrivals_per_day",
    "attachment_status_counts",
    "attention_rows",
    "audit_trail",
    "count_column",
    "filter_counts",
    "ids_for_reparse",
    "list_page",
    "sender_subject_matches",
]


@dataclass(frozen=True)
class ListFilter:
    """What the list is narrowed to; every field None/False means "all responses"."""

    timeliness: str | None = None  # on_time | late | sent_in_time
    status: str | None = None
    unreadable: bool = False
    ack_status: str | None = None
    since: dt.datetime | None = None  # received at or after (UTC)
    until: dt.datetime | None = None  # received before (UTC)
    kind: str = "response"


@dataclass(frozen=True)
class ListRow:
    """One line of the list."""

    id: int
    reference: str
    received_at: dt.datetime | None
    timeliness: str | None
    sent_in_time: bool
    status: str
    ack_status: str
    sender_email: str | None
    sender_name: str | None
    subject: str | None
    files: int = 0
    unread: int = 0


_ROW_COLUMNS = (
    Submission.id,
    Submission.reference,
    Submission.received_at,
    Submission.timeliness,
    Submission.sent_in_time,
    Submission.status,
    Submission.ack_status,
    Submission.sender_email,
    Submission.sender_name,
    Submission.subject,
)


def _conditions(wanted: ListFilter) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = [Submission.kind == wanted.kind]
    if wanted.timeliness == "sent_in_time":
        found.append(Submission.sent_in_time.is_(True))
    elif wanted.timeliness:
        found.append(Submission.timeliness == wanted.timeliness)
    if wanted.status:
        found.append(Submission.status == wanted.status)
    if wanted.ack_status:
        found.append(Submission.ack_status == wanted.ack_status)
    if wanted.unreadable:
        found.append(_unreadable())
    if wanted.since is not None:
        found.append(Submission.received_at >= wanted.since)
    if wanted.until is not None:
        found.append(Submission.received_at < wanted.until)
    return found


def _unreadable() -> ColumnElement[bool]:
    """Like ``repo.needs_rereading``, written as one IN over two indexed lookups (fast)."""
    bad_files = select(Attachment.submission_id).where(
        Attachment.parse_status.not_in(SETTLED_STATUSES)
    )
    bad_messages = select(Submission.id).where(
        Submission.status.in_([SubmissionStatus.FAILED, SubmissionStatus.RECEIVED])
    )
    return Submission.id.in_(bad_files.union(bad_messages))


def _with_file_counts(session: Session, rows: Sequence[Any]) -> list[ListRow]:
    ids = [row.id for row in rows]
    counts: dict[int, tuple[int, int]] = {}
    if ids:
        for sid, files, unread in session.execute(
            select(
                Attachment.submission_id,
                func.count(),
                func.sum(case((Attachment.parse_status.not_in(SETTLED_STATUSES), 1), else_=0)),
            )
            .where(Attachment.submission_id.in_(ids))
            .group_by(Attachment.submission_id)
        ):
            counts[int(sid)] = (int(files), int(unread or 0))
    return [
        ListRow(
            id=row.id,
            reference=row.reference or "",
            received_at=row.received_at,
            timeliness=row.timeliness,
            sent_in_time=bool(row.sent_in_time),
            status=row.status,
            ack_status=row.ack_status,
            sender_email=row.sender_email,
            sender_name=row.sender_name,
            subject=row.subject,
            files=counts.get(row.id, (0, 0))[0],
            unread=counts.get(row.id, (0, 0))[1],
        )
        for row in rows
    ]


def _newest_first(query: Select[*tuple[Any, ...]]) -> Select[*tuple[Any, ...]]:
    # Plain DESC (no NULLS LAST) so both databases walk the received_at index backwards;
    # the few not yet read (no received_at) come first on PostgreSQL, last on SQLite.
    return query.order_by(Submission.received_at.desc(), Submission.id.desc())


def list_page(
    session: Session, wanted: ListFilter, *, limit: int, offset: int
) -> tuple[list[ListRow], int]:
    """One page of responses, newest first, and how many match in all."""
    where = _conditions(wanted)
    total = session.scalar(select(func.count()).select_from(Submission).where(*where)) or 0
    # The page's ids first, from the covering (kind, received_at) index alone, so that a
    # deep OFFSET skips index entries rather than whole rows; then those rows.
    ids = list(
        session.scalars(
            _newest_first(select(Submission.id).where(*where)).limit(limit).offset(offset)
        )
    )
    rows = session.execute(_newest_first(select(*_ROW_COLUMNS).where(Submission.id.in_(ids)))).all()
    return _with_file_counts(session, rows), int(total)


def sender_subject_matches(
    session: Session, query: str, *, limit: int, offset: int
) -> list[ListRow]:
    """Responses whose sender (address or name) or subject contains ``query`` (any case)."""
    needle = query.lower()
    match = or_(
        func.lower(Submission.sender_email).contains(needle, autoescape=True),
        func.lower(Submission.sender_name).contains(needle, autoescape=True),
        func.lower(Submission.subject).contains(needle, autoescape=True),
    )
    rows = session.execute(
        _newest_first(select(*_ROW_COLUMNS).where(Submission.kind == "response", match))
        .limit(limit)
        .offset(offset)
    ).all()
    return _with_file_counts(session, rows)


def count_column(session: Session, column: Any, *, kind: str = "response") -> dict[str, int]:
    """How many submissions of ``kind`` have each value of ``column``."""
    rows = session.execute(
        select(column, func.count()).where(Submission.kind == kind).group_by(column)
    )
    return {str(key): int(n) for key, n in rows}


def filter_counts(session: Session, *, kind: str = "response") -> dict[str, dict[str, int]]:
    """Counts by timeliness (with "sent_in_time"), status and acknowledgement, in one pass
    over the covering index."""
    found: dict[str, dict[str, int]] = {"timeliness": {}, "status": {}, "ack": {}}
    columns = (
        Submission.timeliness,
        Submission.status,
        Submission.ack_status,
        Submission.sent_in_time,
    )
    for timeliness, status, ack, in_time, n in session.execute(
        select(*columns, func.count()).where(Submission.kind == kind).group_by(*columns)
    ):
        for name, value in (("timeliness", timeliness), ("status", status), ("ack", ack)):
            found[name][str(value)] = found[name].get(str(value), 0) + int(n)
        if in_time:
            found["timeliness"]["sent_in_time"] = found["timeliness"].get("sent_in_time", 0) + n
    return found


def arrivals_per_day(
    session: Session, days: Sequence[tuple[dt.datetime, dt.datetime]]
) -> list[int]:
    """Responses received in each [start, end) window: one count per window, each a range
    of the covering (kind, received_at) index."""
    return [
        int(
            session.scalar(
                select(func.count())
                .select_from(Submission)
                .where(
                    Submission.kind == "response",
                    Submission.received_at >= start,
                    Submission.received_at < end,
                )
            )
            or 0
        )
        for start, end in days
    ]


def _is_response() -> ColumnElement[bool]:
    # Written as an expression so that no database walks the index on ``kind`` (one value
    # for nearly every row) in id order: each query below is driven by its selective index.
    return func.coalesce(Submission.kind, "") == "response"


def _first_ids(session: Session, ids: Select[int], limit: int) -> list[int]:
    # Asked without ORDER BY/LIMIT, so that the planner uses the selective index (SQLite's
    # statistics would otherwise have it walk the whole table in id order); few come back.
    return sorted({int(found) for found in session.scalars(ids)})[:limit]


def attention_rows(session: Session, *, limit: int = 200) -> dict[str, list[Any]]:
    """The work queue: what needs a person, by kind, oldest first, at most ``limit`` each."""
    response = _is_response()
    unread = Attachment.parse_status.not_in(SETTLED_STATUSES)
    unreadable_ids = _first_ids(session, select(Attachment.submission_id).where(unread), limit)
    unreadable = session.execute(
        select(
            Submission.reference,
            Submission.received_at,
            Attachment.position,
            Attachment.filename,
            Attachment.parse_status,
            Attachment.error,
        )
        .join(Submission, Submission.id == Attachment.submission_id)
        .where(Attachment.submission_id.in_(unreadable_ids), unread, response)
        .order_by(Attachment.submission_id, Attachment.position)
    ).all()
    broken = [SubmissionStatus.FAILED, SubmissionStatus.TOO_LARGE]
    failed_ids = _first_ids(
        session, select(Submission.id).where(Submission.status.in_(broken)), limit
    )
    failed = session.execute(
        select(Submission.reference, Submission.received_at, Submission.status, Submission.error)
        .where(Submission.id.in_(failed_ids), response)
        .order_by(Submission.id)
    ).all()
    sent_in_time = session.execute(
        select(
            Submission.reference, Submission.received_at, Submission.sent_at, Submission.timeliness
        )
        .where(
            response,
            Submission.sent_in_time.is_(True),
            Submission.timeliness_override_reason.is_(None),
        )
        .order_by(Submission.id)
        .limit(limit)
    ).all()
    # Driven from the acknowledgements' status index: the problem ones are few.
    acks = session.execute(
        select(Submission.reference, Submission.received_at, Ack.status, Ack.reason)
        .select_from(Ack)
        .join(Submission, Submission.id == Ack.submission_id)
        .where(
            Ack.status.in_(["suppressed", "failed", "ack_bounced"]),
            response,
            Ack.status == Submission.ack_status,
        )
        .order_by(Ack.submission_id, Ack.sequence.desc())
        .limit(limit)
    ).all()
    return {
        "unreadable": list(unreadable),
        "failed": list(failed),
        "sent_in_time": list(sent_in_time),
        "acks": list(acks),
    }


def acks_of(session: Session, submission_id: int) -> list[Ack]:
    """Every acknowledgement of one submission (the first, then resends), oldest first."""
    return list(
        session.scalars(
            select(Ack).where(Ack.submission_id == submission_id).order_by(Ack.sequence)
        )
    )


def audit_trail(session: Session, reference: str) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.reference == reference).order_by(AuditEvent.id)
        )
    )


def ids_for_reparse(
    session: Session, *, failed: bool = False, status: str | None = None
) -> list[int]:
    """Every submission (``--all``), those with something unread, or one attachment status."""
    query = select(Submission.id).order_by(Submission.id)
    if failed:
        query = query.where(needs_rereading())
    elif status:
        with_status = select(Attachment.submission_id).where(Attachment.parse_status == status)
        query = query.where(Submission.id.in_(with_status))
    return list(session.scalars(query))


def attachment_status_counts(session: Session, ids: Sequence[int]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(ids), 500):
        for value, n in session.execute(
            select(Attachment.parse_status, func.count())
            .where(Attachment.submission_id.in_(list(ids[start : start + 500])))
            .group_by(Attachment.parse_status)
        ):
            found[str(value)] = found.get(str(value), 0) + int(n)
    return found
