"""Every query and write, as functions that take a Session. No SQL anywhere else.

Callers own the transaction: functions here flush but only :func:`store_raw`
commits, because storing the raw message durably is the one step that must finish
before anything else is attempted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, load_only, selectinload

from . import work
from .base import chunks
from .clean import clean_text, fit
from .errors import NotFound
from .models import (
    Ack,
    AckStatus,
    Attachment,
    AuditEvent,
    DigestRun,
    Lease,
    PollRun,
    RawMessage,
    Sighting,
    Submission,
    SubmissionKind,
    SubmissionStatus,
)
from .parts import SkippedPartRow, skipped_values

__all__ = [
    "SETTLED_STATUSES",
    "RawItem",
    "StoredRaw",
    "ack_counts",
    "acks_by_submission",
    "arrivals_since",
    "audit",
    "count_by",
    "digest_for_day",
    "finish_poll_run",
    "get_by_reference",
    "known_uids",
    "last_poll_run",
    "last_sent_digest",
    "lease_holder",
    "list_rows",
    "load_raw",
    "mark_flagged",
    "needs_rereading",
    "suppress_pending_ack",
    "is_decoration",
    "decoration",
    "unread_attachment",
    "pending_ids",
    "period_own_mail",
    "period_submissions",
    "release_lease",
    "Reading",
    "save_reading",
    "save_readings",
    "KindInputs",
    "kind_inputs",
    "set_kinds",
    "select_acks",
    "select_submissions",
    "start_poll_run",
    "store_raw",
    "store_raws",
    "take_lease",
    "uid_watermark",
    "unflagged_uids",
]


@dataclass(frozen=True, slots=True)
class StoredRaw:
    """The outcome of storing one raw message."""

    submission_id: int
    reference: str
    created: bool  # False: this message was already stored (a second sighting)


@dataclass(frozen=True, slots=True)
class RawItem:
    """One message to store: its bytes and where and when it was seen."""

    raw: bytes
    sha256: str
    message_id: str
    message_id_derived: bool
    source: str
    fetched_at: dt.datetime
    key: tuple[str, int, int] | None = None
    internal_date: dt.datetime | None = None
    size: int | None = None
    header_only: bool = False


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
    """Store one message's bytes and where it was seen, then commit (see :func:`store_raws`)."""
    item = RawItem(
        raw,
        hashlib.sha256(raw).hexdigest(),
        message_id,
        message_id_derived,
        source,
        fetched_at,
        key,
        internal_date,
        size,
        header_only,
    )
    return store_raws(session, [item], reference_prefix)[0]


def store_raws(
    session: Session,
    items: Sequence[RawItem],
    reference_prefix: str,
    *,
    stages: Sequence[str] = (),
    acks_off: bool = False,
    now: dt.datetime | None = None,
) -> list[StoredRaw]:
    """Store messages' bytes and where they were seen, in one transaction, then commit.

    A message already stored (same mailbox key, or same Message-ID and SHA-256) is
    not stored again; only the new sighting is recorded. When another process
    stores one of them at the same moment, the batch is redone one message at a time.

    Each new submission gets ``stages`` marked due in the same transaction, so no
    stored message is ever left without its work; ``acks_off`` records that it will
    not be acknowledged (a backfill, ``--no-ack``).
    """
    plan = _NewWork(tuple(stages), acks_off, now)
    try:
        return _store_batch(session, items, reference_prefix, plan)
    except IntegrityError:
        session.rollback()
    stored = []
    for item in items:
        try:
            stored.extend(_store_batch(session, [item], reference_prefix, plan))
        except IntegrityError:
            session.rollback()  # lost a race for this very message: it is stored now
            stored.extend(_store_batch(session, [item], reference_prefix, plan))
    return stored


@dataclass(frozen=True, slots=True)
class _NewWork:
    stages: tuple[str, ...]
    acks_off: bool
    now: dt.datetime | None


def _store_batch(
    session: Session, items: Sequence[RawItem], reference_prefix: str, work_plan: _NewWork
) -> list[StoredRaw]:
    items = [_fitted(item) for item in items]
    by_key = _known_keys(session, [item.key for item in items if item.key is not None])
    known: dict[tuple[str, str], tuple[int, str]] = {
        (row.message_id, row.sha256): (row.id, row.reference or "")
        for row in session.execute(
            select(
                Submission.id, Submission.reference, Submission.message_id, Submission.sha256
            ).where(Submission.sha256.in_({item.sha256 for item in items}))
        )
    }
    new_rows: dict[tuple[str, str], dict[str, object]] = {}
    plan: list[tuple[RawItem, tuple[str, str], bool]] = []  # item, identity, new sighting?
    for item in items:
        identity = (item.message_id, item.sha256)
        fresh_key = item.key is not None and item.key not in by_key
        if identity not in known and identity not in new_rows:
            new_rows[identity] = {
                "message_id": item.message_id,
                "message_id_derived": item.message_id_derived,
                "sha256": item.sha256,
                "size": item.size if item.size is not None else len(item.raw),
                "source": item.source,
                "fetched_at": item.fetched_at,
                "internal_date": item.internal_date,
                "status": SubmissionStatus.RECEIVED,
                "header_only": item.header_only,
            }
        plan.append((item, identity, fresh_key))
        if item.key is not None:
            by_key.setdefault(item.key, -1)  # the same key twice in one batch: one sighting
    created: set[tuple[str, str]] = set()
    if new_rows:
        # One INSERT for the batch (a few multi-row statements); each id comes back
        # with its row's identity, in whatever order the database returns them.
        returned = session.execute(
            insert(Submission).returning(
                Submission.id, Submission.message_id, Submission.sha256
            ),
            list(new_rows.values()),
        ).all()
        ids = {(row.message_id, row.sha256): row.id for row in returned}
        references = []
        for identity in new_rows:
            new_id = ids[identity]
            reference = f"{reference_prefix}-{new_id:05d}"
            known[identity] = (int(new_id), reference)
            references.append({"id": int(new_id), "reference": reference})
            created.add(identity)
        session.execute(update(Submission), references)
    raws: list[dict[str, object]] = []
    sightings: list[dict[str, object]] = []
    results = []
    for item, identity, fresh_key in plan:
        new = identity in created
        created.discard(identity)  # only its first sighting creates it
        submission_id, reference = known[identity]
        if new:
            raws.append({"submission_id": submission_id, "data": item.raw})
        if fresh_key and item.key is not None:
            sightings.append(_sighting(submission_id, item.key, item.fetched_at))
        results.append(StoredRaw(submission_id, reference, created=new))
    if raws:
        session.execute(insert(RawMessage), raws)
    if sightings:
        session.execute(insert(Sighting), sightings)
    new_ids = [r.submission_id for r in results if r.created]
    if new_ids and work_plan.stages:
        at = work_plan.now or max(item.fetched_at for item in items)
        work.mark_due(session, new_ids, work_plan.stages, at, new=True)
    if new_ids and work_plan.acks_off:
        session.execute(
            update(Submission)
            .where(Submission.id.in_(new_ids), Submission.ack_status == AckStatus.NONE)
            .values(ack_status=AckStatus.OFF)
            .execution_options(synchronize_session=False)
        )
    session.commit()
    return results


def _fitted(item: RawItem) -> RawItem:
    """The item with its Message-ID and source as PostgreSQL will take them."""
    message_id, source = clean_text(item.message_id)[:998], clean_text(item.source)[:500]
    if (message_id, source) == (item.message_id, item.source):
        return item
    return dataclasses.replace(item, message_id=message_id, source=source)


def _known_keys(
    session: Session, keys: Sequence[tuple[str, int, int]]
) -> dict[tuple[str, int, int], int]:
    """Which of these (mailbox, UIDVALIDITY, UID) keys are stored, and as which submission."""
    found: dict[tuple[str, int, int], int] = {}
    groups: dict[tuple[str, int], list[int]] = {}
    for mailbox, validity, uid in keys:
        groups.setdefault((mailbox, validity), []).append(uid)
    for (mailbox, validity), uids in groups.items():
        for start in range(0, len(uids), 500):
            for uid, submission_id in session.execute(
                select(Sighting.uid, Sighting.submission_id).where(
                    Sighting.mailbox == mailbox,
                    Sighting.uidvalidity == validity,
                    Sighting.uid.in_(uids[start : start + 500]),
                )
            ):
                found[(mailbox, validity, int(uid))] = int(submission_id)
    return found


def _sighting(submission_id: int, key: tuple[str, int, int], at: dt.datetime) -> dict[str, object]:
    return {
        "mailbox": key[0],
        "uidvalidity": key[1],
        "uid": key[2],
        "submission_id": submission_id,
        "seen_at": at,
    }


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


def list_rows(query: Select[Submission]) -> Select[*tuple[Any, ...]]:
    """The columns ``intake list`` shows, with file and unread counts, for ``query``'s rows."""
    counts = (
        select(
            Attachment.submission_id,
            func.count().label("files"),
            func.sum(case((unread_attachment(), 1), else_=0)).label("unread"),
        )
        .group_by(Attachment.submission_id)
        .subquery()
    )
    return query.with_only_columns(
        Submission.id,
        Submission.reference,
        Submission.received_at,
        Submission.timeliness,
        Submission.status,
        Submission.sender_email,
        Submission.subject,
        func.coalesce(counts.c.files, 0).label("files"),
        func.coalesce(counts.c.unread, 0).label("unread"),
    ).outerjoin(counts, counts.c.submission_id == Submission.id)


# Attachment statuses that mean "no usable text yet"; an empty file is not a failure.
SETTLED_STATUSES = ("ok", "empty")


# Outlook's own parts, not a respondent's files: signature logos named image001.png
# (small; a pasted screenshot of a letter is larger and still counts) and the
# ATT00001.htm/.txt trailers Exchange splits a body into.
DECORATION_MAX_BYTES = 100_000


def is_decoration(filename: str, content_type: str, size: int) -> bool:
    """True for Outlook's signature images and ATT00001.htm trailers (see :func:`decoration`)."""
    name = filename.lower()
    if re.fullmatch(r"att\d{5}\.(htm|html|txt)", name):
        return True
    return (
        content_type.lower().startswith("image/")
        and re.fullmatch(r"image\d{3}\.(png|jpg|jpeg|gif|bmp)", name) is not None
        and size <= DECORATION_MAX_BYTES
    )


def decoration() -> ColumnElement[bool]:
    """The SQL form of :func:`is_decoration` (LIKE with _ for one character)."""
    name = func.lower(Attachment.filename)
    trailer = or_(*[name.like(f"att_____.{ext}") for ext in ("htm", "html", "txt")])
    logo = and_(
        func.lower(Attachment.content_type).like("image/%"),
        or_(*[name.like(f"image___.{ext}") for ext in ("png", "jpg", "jpeg", "gif", "bmp")]),
        Attachment.size <= DECORATION_MAX_BYTES,
    )
    return or_(trailer, logo)


def unread_attachment() -> ColumnElement[bool]:
    """An attachment whose text a person may be missing: not read, and not decoration."""
    return and_(Attachment.parse_status.not_in(SETTLED_STATUSES), ~decoration())


@dataclass(frozen=True, slots=True)
class KindInputs:
    """What deciding a submission's kind looks at: its kind, headers, subject, files."""

    id: int
    kind: str
    headers_json: str | None
    subject: str | None
    attachments: int


def kind_inputs(session: Session, ids: Sequence[int]) -> list[KindInputs]:
    """:class:`KindInputs` of these submissions, in id order (two queries a chunk)."""
    found: list[KindInputs] = []
    for chunk in chunks(sorted(set(ids))):
        counts: dict[int, int] = {
            int(sid): int(count)
            for sid, count in session.execute(
                select(Attachment.submission_id, func.count())
                .where(Attachment.submission_id.in_(chunk))
                .group_by(Attachment.submission_id)
            )
        }
        rows = session.execute(
            select(Submission.id, Submission.kind, Submission.headers_json, Submission.subject)
            .where(Submission.id.in_(chunk))
            .order_by(Submission.id)
        )
        found.extend(
            KindInputs(sid, kind, headers, subject, int(counts.get(sid, 0)))
            for sid, kind, headers, subject in rows
        )
    return found


def set_kinds(session: Session, kinds: dict[int, str]) -> None:
    """Set these submissions' kinds, one statement per kind."""
    by_kind: dict[str, list[int]] = {}
    for sid, kind in kinds.items():
        by_kind.setdefault(kind, []).append(sid)
    for kind, ids in by_kind.items():
        for chunk in chunks(ids):
            session.execute(
                update(Submission)
                .where(Submission.id.in_(chunk))
                .values(kind=kind)
                .execution_options(synchronize_session=False)
            )


def suppress_pending_ack(session: Session, submission: Submission, reason: str) -> bool:
    """Hold back a not-yet-sent first acknowledgement of ``submission``; True if one was."""
    ack = session.scalar(
        select(Ack).where(
            Ack.submission_id == submission.id,
            Ack.sequence == 0,
            Ack.status == AckStatus.PENDING,
        )
    )
    if ack is None:
        return False
    ack.status = AckStatus.SUPPRESSED
    ack.reason = reason[:2000]
    submission.ack_status = AckStatus.SUPPRESSED
    return True


def needs_rereading() -> ColumnElement[bool]:
    """Submissions whose message or an attachment could not be read, or a stage failed."""
    bad = select(Attachment.submission_id).where(unread_attachment())
    return (
        Submission.status.in_([SubmissionStatus.FAILED, SubmissionStatus.RECEIVED])
        | Submission.id.in_(bad)
        | work.failed_submission_ids()
    )


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


@dataclass(frozen=True)
class Reading:
    """What reading one submission found: its new fields, attachments and skipped parts."""

    submission_id: int
    values: dict[str, object]
    attachments: Sequence[dict[str, object]] = ()
    skipped: Sequence[dict[str, object]] = ()


def save_reading(
    session: Session,
    submission_id: int,
    values: dict[str, object],
    attachments: Sequence[dict[str, object]],
) -> Submission:
    """Replace the parsed view of one submission (see :func:`save_readings`)."""
    save_readings(session, [Reading(submission_id, values, attachments)], skipped=False)
    submission = session.get(Submission, submission_id, populate_existing=True)
    if submission is None:
        raise NotFound(f"no submission with id {submission_id}")
    return submission


def save_readings(session: Session, readings: Sequence[Reading], *, skipped: bool = True) -> None:
    """Replace the parsed view of these submissions: fields, attachments, skipped parts.

    A few statements for the lot, whatever their number. Every string is fitted to its
    column (what had to change is noted in ``defects``, or in an attachment's
    ``error``); a staff override of the timeliness survives a re-read; an attachment
    read again counts one more attempt. ``skipped=False`` leaves the skipped parts.
    """
    ids = [reading.submission_id for reading in readings]
    overridden: set[int] = set()
    previous: dict[tuple[int, int], int] = {}
    for chunk in chunks(ids):
        found = set()
        for sid, reason in session.execute(
            select(Submission.id, Submission.timeliness_override_reason).where(
                Submission.id.in_(chunk)
            )
        ):
            found.add(sid)
            if reason:
                overridden.add(sid)
        missing = [sid for sid in chunk if sid not in found]
        if missing:
            raise NotFound(f"no submission with id {missing[0]}")
        for sid, position, attempts in session.execute(
            select(Attachment.submission_id, Attachment.position, Attachment.attempts).where(
                Attachment.submission_id.in_(chunk)
            )
        ):
            previous[(sid, position)] = attempts
        session.execute(delete(Attachment).where(Attachment.submission_id.in_(chunk)))
        if skipped:
            session.execute(delete(SkippedPartRow).where(SkippedPartRow.submission_id.in_(chunk)))
    updates: list[dict[str, object]] = []
    files: list[dict[str, object]] = []
    parts: list[dict[str, object]] = []
    for reading in readings:
        sid = reading.submission_id
        values = reading.values
        if sid in overridden:
            values = {k: v for k, v in values.items() if k not in ("timeliness", "sent_in_time")}
        values, notes = fit(Submission, values)
        if notes:
            # Recorded with the row: what a hostile message made us change to store it.
            values["defects"] = "; ".join(filter(None, [str(values.get("defects") or ""), *notes]))
            values, _ = fit(Submission, values)
        updates.append({"id": sid, **values})
        for raw_record in reading.attachments:
            record, notes = fit(Attachment, raw_record)
            if notes:
                note = "Stored with changes: " + "; ".join(notes) + "."
                record["error"] = " ".join(filter(None, [str(record.get("error") or ""), note]))
            position = int(str(record["position"]))
            record["attempts"] = previous.get((sid, position), 0) + 1
            files.append({"submission_id": sid, **record})
        parts.extend({"submission_id": sid, **skipped_values(part)} for part in reading.skipped)
    for group in _same_keys(updates):
        session.execute(update(Submission), group)
    if files:
        for group in _same_keys(files):
            session.execute(insert(Attachment), group)
    if parts:
        session.execute(insert(SkippedPartRow), parts)
    session.flush()


def _same_keys(rows: list[dict[str, object]]) -> list[list[dict[str, object]]]:
    """Rows grouped by the columns they set: one executemany per group."""
    groups: dict[tuple[str, ...], list[dict[str, object]]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    return list(groups.values())


# --- worker: leases and health ------------------------------------------------------


def take_lease(
    session: Session, name: str, holder: str, now: dt.datetime, ttl: dt.timedelta
) -> bool:
    """Take or renew the lease ``name`` for ``holder``; False when another holds it."""
    result = session.execute(
        update(Lease)
        .where(Lease.name == name, (Lease.holder == holder) | (Lease.expires_at < now))
        .values(holder=holder, expires_at=now + ttl)
    )
    if getattr(result, "rowcount", 0) == 1:
        session.commit()
        return True
    session.rollback()
    if session.get(Lease, name) is not None:
        return False
    try:
        session.add(Lease(name=name, holder=holder, expires_at=now + ttl))
        session.commit()
        return True
    except IntegrityError:
        session.rollback()
        return False


def release_lease(session: Session, name: str, holder: str) -> None:
    session.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))
    session.commit()


def lease_holder(session: Session, name: str, now: dt.datetime) -> str | None:
    lease = session.get(Lease, name)
    return lease.holder if lease is not None and lease.expires_at >= now else None


def start_poll_run(session: Session, mailbox: str, now: dt.datetime) -> int:
    run = PollRun(mailbox=mailbox, started_at=now)
    session.add(run)
    session.commit()
    return run.id


def finish_poll_run(
    session: Session,
    run_id: int,
    now: dt.datetime,
    *,
    ok: bool,
    stored: int = 0,
    error: str | None = None,
) -> None:
    run = session.get(PollRun, run_id)
    if run is None:
        return
    run.finished_at, run.ok, run.stored, run.error = now, ok, stored, error
    session.commit()


def last_poll_run(session: Session, *, ok: bool | None = None) -> PollRun | None:
    query = select(PollRun).where(PollRun.finished_at.is_not(None))
    if ok is not None:
        query = query.where(PollRun.ok.is_(ok))
    return session.scalar(query.order_by(PollRun.id.desc()).limit(1))


def count_by(session: Session, column: ColumnElement[str] | Any) -> dict[str, int]:
    """Counts of responses grouped by one column (e.g. Submission.status)."""
    rows = session.execute(
        select(column, func.count()).where(Submission.kind == "response").group_by(column)
    )
    return {str(key): int(n) for key, n in rows}


def ack_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Ack.status, func.count()).group_by(Ack.status))
    return {str(key): int(n) for key, n in rows}


# --- digests ---------------------------------------------------------------------------


def last_sent_digest(session: Session) -> DigestRun | None:
    return session.scalar(
        select(DigestRun)
        .where(DigestRun.status == "sent")
        .order_by(DigestRun.period_end.desc())
        .limit(1)
    )


def digest_for_day(session: Session, day: dt.date) -> DigestRun | None:
    return session.scalar(select(DigestRun).where(DigestRun.day == day))


def period_submissions(
    session: Session, start: dt.datetime | None, end: dt.datetime
) -> list[Submission]:
    """Responses stored in (start, end], by the time we stored them (fetched_at).

    Loads what a digest shows, not the texts: a busy day must not read every file's text.
    """
    query = (
        select(Submission)
        .where(Submission.kind == "response", Submission.fetched_at <= end)
        .options(
            load_only(
                Submission.reference,
                Submission.sender_name,
                Submission.sender_email,
                Submission.subject,
                Submission.received_at,
                Submission.fetched_at,
                Submission.timeliness,
                Submission.sent_in_time,
                Submission.status,
                Submission.ack_status,
                Submission.error,
            ),
            # Every column the digest reads (is_decoration looks at the type and size):
            # one left out is loaded row by row, a query per attachment.
            selectinload(Submission.attachments).load_only(
                Attachment.filename,
                Attachment.content_type,
                Attachment.size,
                Attachment.parse_status,
                Attachment.error,
                Attachment.position,
            ),
        )
    )
    if start is not None:
        query = query.where(Submission.fetched_at > start)
    return list(session.scalars(query.order_by(Submission.id)))


def period_own_mail(
    session: Session, start: dt.datetime | None, end: dt.datetime
) -> list[tuple[str, str | None]]:
    """Our own mail stored in (start, end]: (reference, why it is ours), oldest first."""
    query = (
        select(Submission.reference, Ack.reason)
        .outerjoin(Ack, (Ack.submission_id == Submission.id) & (Ack.sequence == 0))
        .where(Submission.kind == SubmissionKind.OWN_MAIL, Submission.fetched_at <= end)
        .order_by(Submission.id)
    )
    if start is not None:
        query = query.where(Submission.fetched_at > start)
    return [(str(ref or ""), reason) for ref, reason in session.execute(query)]


def acks_by_submission(session: Session, ids: Sequence[int]) -> dict[int, Ack]:
    found: dict[int, Ack] = {}
    for start in range(0, len(ids), 500):
        for ack in session.scalars(
            select(Ack).where(Ack.submission_id.in_(ids[start : start + 500]), Ack.sequence == 0)
        ):
            found[ack.submission_id] = ack
    return found


def arrivals_since(session: Session, since: dt.datetime) -> list[dt.datetime]:
    return [
        value
        for value in session.scalars(
            select(Submission.received_at).where(
                Submission.kind == "response", Submission.received_at >= since
            )
        )
        if value is not None
    ]
