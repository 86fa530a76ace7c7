"""Who does which piece of work, and until when: stage records, claims and holders.

A submission moves through named stages (``read``, ``ack``, later ``index``...).
Each (submission, stage) pair has one row in ``submission_stages`` whose ``state``
is ``due``, ``running``, ``done`` or ``failed``. A runner *claims* due rows before
it works on them:

* PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` then an ``UPDATE`` of the rows
  it locked, so two runners never wait for, or take, each other's rows;
* SQLite: one conditional ``UPDATE`` per row (``WHERE state = 'due' ...``); SQLite
  writes one transaction at a time, so the row count says who won.

A claim lasts until ``claimed_until``; a claim past that time, or one whose holder
is a process on this host that no longer exists, may be taken again. ``claimed_until``
on a ``due`` row is "not before": a failed attempt waits before the next one.

Holders are ``host:pid:random`` strings (:func:`holder_id`), which lets a process
on the same host tell at once that a holder died (a SIGKILL, the OOM killer).
"""

from __future__ import annotations

import datetime as dt
import enum
import os
import secrets
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from .base import chunks
from .models import (
    Ack,
    AckStatus,
    Base,
    DigestRun,
    Lease,
    RawMessage,
    Sighting,
    Submission,
    UTCDateTime,
)

__all__ = [
    "FailedStage",
    "StageRow",
    "StageState",
    "UnfetchedUid",
    "claim",
    "claim_ack",
    "claim_digest_day",
    "due_acks",
    "failed_stage_details",
    "done_among",
    "failed_stages",
    "failed_stages_by_reference",
    "failed_submission_ids",
    "holder_alive",
    "holder_id",
    "mark_done",
    "mark_done_many",
    "mark_due",
    "raws_for_reading",
    "ReadingRow",
    "rows_for_reading",
    "record_failure",
    "reference_of",
    "release",
    "set_failed",
    "stage_counts",
    "stage_state",
    "take_lease_healing",
    "record_unfetched",
    "resolve_unfetched",
    "unfetched",
]

_ERROR_LIMIT = 4000


class StageState(enum.StrEnum):
    """Where one submission is in one stage."""

    DUE = "due"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # max_attempts reached; made due again only by a person


class StageRow(Base):
    """One submission's progress through one stage."""

    __tablename__ = "submission_stages"
    __table_args__ = (
        UniqueConstraint("submission_id", "stage", name="uq_submission_stages_submission_stage"),
        Index("ix_submission_stages_stage_state", "stage", "state", "submission_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), index=True
    )
    stage: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(20), default=StageState.DUE)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class UnfetchedUid(Base):
    """A UID the server listed but did not return, even when asked for it alone.

    Recorded before any later UID of the same fetch is stored, so the watermark
    (the highest stored UID) never passes a message nobody knows about; every poll
    asks for it again, and staff see it in ``intake status`` and the digest.
    """

    __tablename__ = "unfetched_uids"
    __table_args__ = (
        UniqueConstraint("mailbox", "uidvalidity", "uid", name="uq_unfetched_uids_mailbox_uid"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(500))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    first_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_tried: Mapped[dt.datetime] = mapped_column(UTCDateTime)


# --- holders -----------------------------------------------------------------------

_HOST = socket.gethostname()


def holder_id() -> str:
    """This process as a holder: host, PID and a random part (PIDs are reused)."""
    return f"{_HOST}:{os.getpid()}:{secrets.token_hex(4)}"[:200]


def holder_alive(holder: str | None) -> bool:
    """False only when ``holder`` is a process on this host that no longer exists.

    A holder on another host, or one not in ``host:pid:...`` form, is taken to be
    alive: only its claim's expiry frees its work.
    """
    if not holder:
        return False
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _HOST or not pid_text.isdigit():
        return True
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    """A killed child not yet reaped by its parent still answers kill(0): look closer."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True


# --- stage records -------------------------------------------------------------------


def mark_due(
    session: Session,
    ids: Iterable[int],
    stages: Sequence[str],
    now: dt.datetime,
    *,
    new: bool = False,
) -> int:
    """Make ``stages`` due for these submissions (new rows, or existing ones reset).

    A running claim is left alone: the runner holding it finishes, then the row is
    due again only if asked after that. ``new``: the submissions were created in this
    transaction, so they have no rows yet to look for. Returns the rows made due.
    """
    wanted = list(dict.fromkeys(ids))
    changed = 0
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        for stage in stages:
            existing = (
                set()
                if new
                else set(
                    session.scalars(
                        select(StageRow.submission_id).where(
                            StageRow.stage == stage, StageRow.submission_id.in_(chunk)
                        )
                    )
                )
            )
            rows = [
                {
                    "submission_id": submission_id,
                    "stage": stage,
                    "state": StageState.DUE,
                    "attempts": 0,
                    "updated_at": now,
                }
                for submission_id in chunk
                if submission_id not in existing
            ]
            if rows:  # one statement for the lot, through the table: no object each
                session.execute(insert(cast(Table, StageRow.__table__)), rows)
                changed += len(rows)
            if existing:
                result = session.execute(
                    update(StageRow)
                    .where(
                        StageRow.stage == stage,
                        StageRow.submission_id.in_(existing),
                        StageRow.state != StageState.RUNNING,
                    )
                    .values(
                        state=StageState.DUE,
                        attempts=0,
                        last_error=None,
                        claimed_by=None,
                        claimed_until=None,
                        updated_at=now,
                    )
                    .execution_options(synchronize_session=False)
                )
                changed += int(getattr(result, "rowcount", 0) or 0)
    session.flush()
    return changed


def _ready(now: dt.datetime) -> ColumnElement[bool]:
    """A row that may be claimed: due and not held, or running past its claim."""
    return or_(
        and_(
            StageRow.state == StageState.DUE,
            or_(StageRow.claimed_until.is_(None), StageRow.claimed_until < now),
        ),
        and_(StageRow.state == StageState.RUNNING, StageRow.claimed_until < now),
    )


# The same stage table under another name, for "the earlier stages of this submission"
# (made once: building an alias's columns costs more than the rest of a claim's query).
_EARLIER = StageRow.__table__.alias("earlier")


def _claimable(stage: str, now: dt.datetime, before: Sequence[str]) -> ColumnElement[bool]:
    condition = and_(StageRow.stage == stage, _ready(now))
    if before:
        # A stage runs only once the earlier stages of the same submission are done.
        earlier = _EARLIER
        blocked = (
            select(earlier.c.id)
            .where(
                earlier.c.submission_id == StageRow.submission_id,
                earlier.c.stage.in_(list(before)),
                earlier.c.state != StageState.DONE,
            )
            .exists()
        )
        condition = and_(condition, ~blocked)
    return condition


def claim(
    session: Session,
    stage: str,
    holder: str,
    now: dt.datetime,
    ttl: dt.timedelta,
    *,
    limit: int = 50,
    before: Sequence[str] = (),
    only: Sequence[int] | None = None,
    after_id: int = 0,
) -> list[int]:
    """Claim up to ``limit`` due submissions for ``stage`` and commit; their ids, oldest first.

    Args:
        before: stages that must be ``done`` for a submission first.
        only: restrict the claim to these submissions.
        after_id: only submissions with a greater id (one pass walks the ids upwards,
            so a submission that failed in this pass is not tried again in it).
    """
    _free_dead_claims(session, stage, now)
    condition = and_(_claimable(stage, now, before), StageRow.submission_id > after_id)
    if only is not None:
        if not only:
            return []
        condition = and_(condition, StageRow.submission_id.in_(list(only)))
    values = {
        "state": StageState.RUNNING,
        "claimed_by": holder,
        "claimed_until": now + ttl,
        "updated_at": now,
    }
    if session.get_bind().dialect.name == "postgresql":
        rows = list(
            session.execute(
                select(StageRow.id, StageRow.submission_id)
                .where(condition)
                .order_by(StageRow.submission_id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if rows:
            session.execute(
                update(StageRow)
                .where(StageRow.id.in_([row.id for row in rows]))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        session.commit()
        return [int(row.submission_id) for row in rows]
    candidates = list(
        session.scalars(
            select(StageRow.id).where(condition).order_by(StageRow.submission_id).limit(limit)
        )
    )
    if not candidates:
        session.rollback()
        return []
    # One conditional UPDATE: it re-checks each row under SQLite's write lock, so of
    # two processes racing for a row exactly one gets it back from RETURNING. The
    # rows are found by their ids (the candidates are all of this stage): with the
    # stage in the condition, SQLite would walk the stage's whole index instead.
    won = [
        int(submission_id)
        for submission_id in session.scalars(
            update(StageRow)
            .where(StageRow.id.in_(candidates), _ready(now))
            .values(**values)
            .returning(StageRow.submission_id)
            .execution_options(synchronize_session=False)
        )
    ]
    session.commit()
    return sorted(won)


def _free_dead_claims(session: Session, stage: str, now: dt.datetime) -> int:
    """Free ``running`` claims whose holder on this host has died, so they run at once.

    Looks at each holder once, not at each row: another worker's live batch costs
    one row here, however many submissions it holds.
    """
    held = (
        StageRow.stage == stage,
        StageRow.state == StageState.RUNNING,
        StageRow.claimed_until >= now,
    )
    holders = session.scalars(select(StageRow.claimed_by).where(*held).distinct()).all()
    dead = [holder for holder in holders if not holder_alive(holder)]
    freed = 0
    if dead:
        result = session.execute(
            update(StageRow)
            .where(*held, StageRow.claimed_by.in_(dead))
            .values(claimed_until=now - dt.timedelta(seconds=1))
            .execution_options(synchronize_session=False)
        )
        freed = int(getattr(result, "rowcount", 0) or 0)
        session.commit()
    else:
        session.rollback()
    return freed


def release(
    session: Session, ids: Sequence[int], stage: str, holder: str, now: dt.datetime
) -> None:
    """Give back claims not worked on (a stop request): due again at once."""
    for start in range(0, len(ids), 500):
        session.execute(
            update(StageRow)
            .where(
                StageRow.stage == stage,
                StageRow.submission_id.in_(list(ids[start : start + 500])),
                StageRow.claimed_by == holder,
                StageRow.state == StageState.RUNNING,
            )
            .values(state=StageState.DUE, claimed_by=None, claimed_until=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )


def mark_done(
    session: Session, submission_id: int, stage: str, holder: str, now: dt.datetime
) -> None:
    """Record success (in the caller's transaction, with the stage's own writes)."""
    session.execute(
        update(StageRow)
        .where(
            StageRow.submission_id == submission_id,
            StageRow.stage == stage,
            StageRow.claimed_by == holder,
        )
        .values(
            state=StageState.DONE,
            last_error=None,
            claimed_by=None,
            claimed_until=None,
            updated_at=now,
            attempts=StageRow.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )


def mark_done_many(
    session: Session, ids: Sequence[int], stage: str, holder: str, now: dt.datetime
) -> None:
    """:func:`mark_done` for a whole batch, in one statement per 500."""
    for start in range(0, len(ids), 500):
        session.execute(
            update(StageRow)
            .where(
                StageRow.submission_id.in_(list(ids[start : start + 500])),
                StageRow.stage == stage,
                StageRow.claimed_by == holder,
            )
            .values(
                state=StageState.DONE,
                last_error=None,
                claimed_by=None,
                claimed_until=None,
                updated_at=now,
                attempts=StageRow.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )


def record_failure(
    session: Session,
    submission_id: int,
    stage: str,
    holder: str | None,
    error: str,
    now: dt.datetime,
    *,
    max_attempts: int,
    retry_after: dt.timedelta,
    busy: bool = False,
) -> str:
    """Record a failed attempt; the row is ``failed`` after ``max_attempts``. Its new state.

    ``busy``: the database was busy (:func:`store.db.is_busy`), which says nothing about
    the submission: no attempt is counted, and it is due again after ``retry_after``.
    """
    row = session.scalar(
        select(StageRow).where(StageRow.submission_id == submission_id, StageRow.stage == stage)
    )
    if row is None or (holder is not None and row.claimed_by not in (holder, None)):
        return row.state if row is not None else StageState.FAILED
    row.last_error = _clean_error(error)
    row.updated_at = now
    row.claimed_by = None
    if busy:
        row.state = StageState.DUE
        row.claimed_until = now + retry_after
        session.flush()
        return row.state
    row.attempts += 1
    if row.attempts >= max_attempts:
        row.state = StageState.FAILED
        row.claimed_until = None
    else:
        row.state = StageState.DUE
        row.claimed_until = now + retry_after * (2 ** (row.attempts - 1))
    session.flush()
    return row.state


def set_failed(
    session: Session, submission_id: int, stage: str, error: str, now: dt.datetime
) -> None:
    """Mark a stage failed for good (e.g. the outbox gave up on an acknowledgement)."""
    session.execute(
        update(StageRow)
        .where(StageRow.submission_id == submission_id, StageRow.stage == stage)
        .values(state=StageState.FAILED, last_error=_clean_error(error), updated_at=now)
        .execution_options(synchronize_session=False)
    )


def _clean_error(error: str) -> str:
    return error.replace("\x00", "\\x00").encode("utf-8", "replace").decode("utf-8")[:_ERROR_LIMIT]


@dataclass(frozen=True)
class FailedStage:
    """A stage that failed for good: which, how often it was tried, why, and when."""

    reference: str
    stage: str
    attempts: int
    error: str
    failed_at: dt.datetime


def failed_stage_details(session: Session, limit: int | None = None) -> list[FailedStage]:
    """Every failed stage, by submission then stage name."""
    query = (
        select(
            Submission.reference,
            StageRow.stage,
            StageRow.attempts,
            StageRow.last_error,
            StageRow.updated_at,
        )
        .join(Submission, Submission.id == StageRow.submission_id)
        .where(StageRow.state == StageState.FAILED)
        .order_by(StageRow.submission_id, StageRow.stage)
    )
    if limit:
        query = query.limit(limit)
    return [
        FailedStage(reference or "", stage, int(attempts), error or "", failed_at)
        for reference, stage, attempts, error, failed_at in session.execute(query)
    ]


def failed_stages_by_reference(session: Session) -> dict[str, list[FailedStage]]:
    """The failed stages of each submission that has any, by its reference."""
    found: dict[str, list[FailedStage]] = {}
    for failure in failed_stage_details(session):
        found.setdefault(failure.reference, []).append(failure)
    return found


def failed_stages(session: Session, limit: int | None = None) -> list[tuple[str, str, int, str]]:
    """(reference, stage, attempts, last error) of every failed stage, oldest first."""
    return [
        (f.reference, f.stage, f.attempts, f.error) for f in failed_stage_details(session, limit)
    ]


def failed_submission_ids() -> ColumnElement[bool]:
    """A condition on Submission: some stage of it has failed."""
    return Submission.id.in_(
        select(StageRow.submission_id).where(StageRow.state == StageState.FAILED)
    )


def stage_counts(session: Session) -> dict[str, dict[str, int]]:
    """{stage: {state: count}}."""
    found: dict[str, dict[str, int]] = {}
    for stage, state, count in session.execute(
        select(StageRow.stage, StageRow.state, func.count()).group_by(
            StageRow.stage, StageRow.state
        )
    ):
        found.setdefault(stage, {})[state] = int(count)
    return found


def done_among(session: Session, ids: Sequence[int], stage: str) -> set[int]:
    """Which of ``ids`` have ``stage`` done (or failed: finished either way)."""
    found: set[int] = set()
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        found.update(
            session.scalars(
                select(StageRow.submission_id).where(
                    StageRow.stage == stage,
                    StageRow.submission_id.in_(chunk),
                    StageRow.state.in_([StageState.DONE, StageState.FAILED]),
                )
            )
        )
    return found


def largest_first(session: Session, ids: Sequence[int]) -> list[int]:
    """``ids`` ordered by their messages' stored size, the largest first (then by id)."""
    sizes: dict[int, int] = {}
    for chunk in chunks(list(ids)):
        sizes.update(
            (int(i), int(size or 0))
            for i, size in session.execute(
                select(Submission.id, Submission.size).where(Submission.id.in_(chunk))
            )
        )
    return sorted(ids, key=lambda i: (-sizes.get(i, 0), i))


def raws_for_reading(
    session: Session, ids: Sequence[int]
) -> list[tuple[int, str, str, bool, bytes]]:
    """(id, sha256, status, header_only, raw bytes) of these submissions, in one query.

    Loads no relationships (a plain ``session.get`` would also load the attachments).
    """
    rows = session.execute(
        select(
            Submission.id,
            Submission.sha256,
            Submission.status,
            Submission.header_only,
            RawMessage.data,
        )
        .join(RawMessage, RawMessage.submission_id == Submission.id)
        .where(Submission.id.in_(list(ids)))
        .order_by(Submission.id)
    )
    return [(int(i), sha, status, bool(head), bytes(data)) for i, sha, status, head, data in rows]


@dataclass(frozen=True, slots=True)
class ReadingRow:
    """What the read stage needs to know of a stored submission before reading it."""

    id: int
    sha256: str
    status: str
    kind: str
    header_only: bool
    size: int
    internal_date: dt.datetime | None
    fetched_at: dt.datetime


def rows_for_reading(session: Session, ids: Sequence[int]) -> dict[int, ReadingRow]:
    """These submissions' :class:`ReadingRow`, by id (no raw bytes, no relationships)."""
    found: dict[int, ReadingRow] = {}
    for chunk in chunks(list(ids)):
        for row in session.execute(
            select(
                Submission.id,
                Submission.sha256,
                Submission.status,
                Submission.kind,
                Submission.header_only,
                Submission.size,
                Submission.internal_date,
                Submission.fetched_at,
            ).where(Submission.id.in_(chunk))
        ):
            found[int(row.id)] = ReadingRow(
                int(row.id),
                row.sha256,
                row.status,
                row.kind,
                bool(row.header_only),
                int(row.size),
                row.internal_date,
                row.fetched_at,
            )
    return found


def reference_of(session: Session, submission_id: int) -> str | None:
    return session.scalar(select(Submission.reference).where(Submission.id == submission_id))


def stage_state(session: Session, submission_id: int, stage: str) -> StageRow | None:
    return session.scalar(
        select(StageRow).where(StageRow.submission_id == submission_id, StageRow.stage == stage)
    )


# --- leases that heal ------------------------------------------------------------------


def take_lease_healing(
    session: Session, name: str, holder: str, now: dt.datetime, ttl: dt.timedelta
) -> bool:
    """Take or renew the lease ``name``; a lapsed lease or a dead holder's is taken over.

    "Dead" means a process on this host that no longer exists (see :func:`holder_alive`):
    after a SIGKILL the next run proceeds at once instead of waiting for the lease
    to lapse. The take-over is a conditional UPDATE on the old holder, so of two
    processes that both see the dead holder exactly one wins.
    """
    result = session.execute(
        update(Lease)
        .where(Lease.name == name, (Lease.holder == holder) | (Lease.expires_at < now))
        .values(holder=holder, expires_at=now + ttl)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) == 1:
        session.commit()
        return True
    current = session.scalar(select(Lease.holder).where(Lease.name == name))
    if current is not None:
        if holder_alive(current):
            session.rollback()
            return False
        result = session.execute(
            update(Lease)
            .where(Lease.name == name, Lease.holder == current)
            .values(holder=holder, expires_at=now + ttl)
            .execution_options(synchronize_session=False)
        )
        won = getattr(result, "rowcount", 0) == 1
        session.commit()
        return won
    try:
        session.add(Lease(name=name, holder=holder, expires_at=now + ttl))
        session.commit()
        return True
    except IntegrityError:
        session.rollback()
        return False


# --- outbox claims -------------------------------------------------------------------------


def _ack_claimable(now: dt.datetime) -> ColumnElement[bool]:
    return or_(
        and_(
            Ack.status == AckStatus.PENDING,
            or_(Ack.next_attempt_at.is_(None), Ack.next_attempt_at <= now),
        ),
        and_(
            Ack.status == AckStatus.SENDING,
            or_(Ack.claimed_until.is_(None), Ack.claimed_until < now),
        ),
    )


def due_acks(session: Session, now: dt.datetime) -> list[int]:
    """Outbox rows to send now: pending and due, or ``sending`` past (or bereft of) a claim."""
    found = list(session.scalars(select(Ack.id).where(_ack_claimable(now)).order_by(Ack.id)))
    live = session.execute(
        select(Ack.id, Ack.claimed_by).where(
            Ack.status == AckStatus.SENDING, Ack.claimed_until >= now
        )
    )
    found += [int(ack_id) for ack_id, holder in live if not holder_alive(holder)]
    return sorted(set(found))


def claim_ack(
    session: Session, ack_id: int, holder: str, now: dt.datetime, ttl: dt.timedelta
) -> bool:
    """Claim one outbox row for sending (attempts + 1) and commit; False if it is not ours.

    Claimable: ``pending`` and due; ``sending`` whose claim expired; ``sending`` whose
    holder is a process on this host that no longer exists.
    """
    condition = _ack_claimable(now)
    current = session.execute(select(Ack.status, Ack.claimed_by).where(Ack.id == ack_id)).first()
    if current is None:
        return False
    if current.status == AckStatus.SENDING and not holder_alive(current.claimed_by):
        condition = or_(
            condition, and_(Ack.status == AckStatus.SENDING, Ack.claimed_by == current.claimed_by)
        )
    result = session.execute(
        update(Ack)
        .where(Ack.id == ack_id, condition)
        .values(
            status=AckStatus.SENDING,
            attempts=Ack.attempts + 1,
            claimed_by=holder,
            claimed_until=now + ttl,
        )
        .execution_options(synchronize_session=False)
    )
    won = getattr(result, "rowcount", 0) == 1
    session.commit()
    if won:
        session.expire_all()
    return won


# --- the daily digest ------------------------------------------------------------------------


def claim_digest_day(
    session: Session, day: dt.date, holder: str, now: dt.datetime, ttl: dt.timedelta
) -> DigestRun | None:
    """Claim the scheduled digest of UK ``day``; None when it is sent or someone holds it.

    A new day inserts its row (the unique ``day`` decides between two workers); a
    ``sending`` or ``failed`` row is taken over only when its claim has expired or its
    holder on this host is gone, so a live worker's in-flight digest is respected.
    """
    run = session.scalar(select(DigestRun).where(DigestRun.day == day))
    if run is None:
        run = DigestRun(
            day=day, period_end=now, status="sending", claimed_by=holder, claimed_until=now + ttl
        )
        session.add(run)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            return None
        return run
    if run.status == "sent":
        session.rollback()
        return None
    takeable = or_(DigestRun.claimed_until.is_(None), DigestRun.claimed_until < now)
    if run.status == "failed":
        takeable = or_(takeable, DigestRun.claimed_by.is_(None))
    if run.claimed_by is not None and not holder_alive(run.claimed_by):
        takeable = or_(takeable, DigestRun.claimed_by == run.claimed_by)
    result = session.execute(
        update(DigestRun)
        .where(DigestRun.id == run.id, DigestRun.status != "sent", takeable)
        .values(claimed_by=holder, claimed_until=now + ttl)
        .execution_options(synchronize_session=False)
    )
    won = getattr(result, "rowcount", 0) == 1
    session.commit()
    if not won:
        return None
    session.refresh(run)
    return run


# --- UIDs the server did not return ----------------------------------------------------------


def record_unfetched(
    session: Session, mailbox: str, uidvalidity: int, uids: Sequence[int], now: dt.datetime
) -> None:
    """Record (or count another attempt at) UIDs the server did not return; commits."""
    for uid in uids:
        row = session.scalar(
            select(UnfetchedUid).where(
                UnfetchedUid.mailbox == mailbox,
                UnfetchedUid.uidvalidity == uidvalidity,
                UnfetchedUid.uid == uid,
            )
        )
        if row is None:
            session.add(
                UnfetchedUid(
                    mailbox=mailbox,
                    uidvalidity=uidvalidity,
                    uid=uid,
                    attempts=1,
                    first_seen=now,
                    last_tried=now,
                )
            )
        else:
            row.attempts += 1
            row.last_tried = now
    session.commit()


def resolve_unfetched(session: Session, mailbox: str, uidvalidity: int) -> list[int]:
    """Forget recorded gaps that are now stored (a sighting exists); commits. Their UIDs."""
    rows = list(
        session.scalars(
            select(UnfetchedUid).where(
                UnfetchedUid.mailbox == mailbox, UnfetchedUid.uidvalidity == uidvalidity
            )
        )
    )
    if not rows:
        return []
    stored = set(
        session.scalars(
            select(Sighting.uid).where(
                Sighting.mailbox == mailbox,
                Sighting.uidvalidity == uidvalidity,
                Sighting.uid.in_([row.uid for row in rows]),
            )
        )
    )
    resolved = []
    for row in rows:
        if row.uid in stored:
            session.delete(row)
            resolved.append(row.uid)
    session.commit()
    return resolved


def unfetched(
    session: Session, mailbox: str | None = None, uidvalidity: int | None = None
) -> list[UnfetchedUid]:
    """Recorded gaps, oldest first (all mailboxes unless one is named)."""
    query = select(UnfetchedUid).order_by(UnfetchedUid.id)
    if mailbox is not None:
        query = query.where(UnfetchedUid.mailbox == mailbox)
    if uidvalidity is not None:
        query = query.where(UnfetchedUid.uidvalidity == uidvalidity)
    return list(session.scalars(query))
