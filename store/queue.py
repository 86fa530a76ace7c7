"""The SQL of the job queue that spreads stages over several machines (PostgreSQL only).

The queue itself is procrastinate's: its tables (``procrastinate_jobs``,
``procrastinate_workers``...) live in the same database and schema as ours and are
created by :func:`ensure_queue_schema` (``intake db upgrade``). Our
``submission_stages`` table stays the record of what is done; a queued job is only
a request to run one stage of one submission. This module holds the few queries
that look at both: which claimable stages have no job waiting yet, how long the
queue is, and which processors are alive.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import (
    Engine,
    Text,
    cast,
    column,
    func,
    literal,
    literal_column,
    select,
    table,
    text,
    update,
)
from sqlalchemy.orm import Session

from .work import StageRow, StageState, _claimable

__all__ = [
    "QueueOverview",
    "WorkerBeat",
    "ensure_queue_schema",
    "extend_claims",
    "has_queue_schema",
    "queue_lock",
    "queue_overview",
    "ready_to_queue",
]

# procrastinate's queueing lock of a (stage, submission): one waiting job at most.
_LOCK_PREFIX = "stage"


def queue_lock(stage: str, submission_id: int) -> str:
    """The queueing lock of one stage of one submission (at most one job waits)."""
    return f"{_LOCK_PREFIX}:{stage}:{submission_id}"


def has_queue_schema(session_or_engine: Session | Engine) -> bool:
    """True when procrastinate's tables exist in the database's current schema."""
    query = text("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
    if isinstance(session_or_engine, Session):
        return bool(session_or_engine.scalar(query))
    with session_or_engine.connect() as connection:
        return bool(connection.scalar(query))


def ensure_queue_schema(engine: Engine) -> bool:
    """Create procrastinate's tables and functions on PostgreSQL if they are missing.

    Returns True when it created them. SQLite has no job queue (one machine runs its
    stages in-process) and is left alone.
    """
    if engine.dialect.name != "postgresql" or has_queue_schema(engine):
        return False
    from procrastinate.schema import SchemaManager  # only PostgreSQL needs it

    schema_sql = SchemaManager.get_schema()
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(schema_sql)
        cursor.close()
        raw.commit()
    finally:
        raw.close()
    return True


def ready_to_queue(
    session: Session,
    stage: str,
    before: Sequence[str],
    now: dt.datetime,
    *,
    only: Sequence[int] | None = None,
    limit: int = 1000,
) -> list[int]:
    """Submissions whose ``stage`` could be claimed now and that have no job waiting.

    "Could be claimed" is the runner's own test (``store.work``): due and not
    waiting out a retry, or running under a claim that has lapsed; and the earlier
    stages ``done``. A job already waiting (procrastinate status ``todo``) under the
    stage's queueing lock leaves the submission out, so a sweep never floods the
    queue however often it runs.
    """
    lock = literal(f"{_LOCK_PREFIX}:{stage}:") + cast(StageRow.submission_id, Text)
    jobs = table("procrastinate_jobs", column("status"), column("queueing_lock")).alias("j")
    queued = (
        select(literal(1))
        .select_from(jobs)
        .where(jobs.c.status == literal_column("'todo'"), jobs.c.queueing_lock == lock)
        .exists()
    )
    query = (
        select(StageRow.submission_id)
        .where(_claimable(stage, now, before), ~queued)
        .order_by(StageRow.submission_id)
        .limit(limit)
    )
    if only is not None:
        if not only:
            return []
        query = query.where(StageRow.submission_id.in_(list(only)))
    return [int(value) for value in session.scalars(query)]


def extend_claims(session: Session, holder: str, until: dt.datetime, now: dt.datetime) -> int:
    """Renew every live stage claim of ``holder`` (a heartbeat while stages run)."""
    result = session.execute(
        update(StageRow)
        .where(StageRow.claimed_by == holder, StageRow.state == StageState.RUNNING)
        .values(claimed_until=until, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True)
class WorkerBeat:
    """One processor as procrastinate knows it: its name and last heartbeat."""

    worker_id: int
    name: str
    last_heartbeat: dt.datetime
    jobs: int


@dataclass
class QueueOverview:
    """The queue at a glance, for ``intake status``."""

    due: dict[str, int] = field(default_factory=dict)
    running: dict[str, list[str]] = field(default_factory=dict)  # stage -> holders
    failed: dict[str, int] = field(default_factory=dict)
    oldest_due: dt.datetime | None = None
    waiting_jobs: int = 0
    workers: list[WorkerBeat] = field(default_factory=list)


def queue_overview(session: Session) -> QueueOverview:
    """Stage states per stage, who runs what, and (PostgreSQL) the processors' heartbeats."""
    overview = QueueOverview()
    rows = session.execute(
        select(
            StageRow.stage, StageRow.state, func.count(), func.min(StageRow.updated_at)
        ).group_by(StageRow.stage, StageRow.state)
    )
    for stage, state, count, oldest in rows:
        if state == StageState.DUE:
            overview.due[stage] = int(count)
            if oldest is not None and (overview.oldest_due is None or oldest < overview.oldest_due):
                overview.oldest_due = oldest
        elif state == StageState.FAILED:
            overview.failed[stage] = int(count)
    for stage, holder in session.execute(
        select(StageRow.stage, StageRow.claimed_by)
        .where(StageRow.state == StageState.RUNNING)
        .distinct()
    ):
        overview.running.setdefault(stage, []).append(holder or "?")
    if session.get_bind().dialect.name != "postgresql" or not has_queue_schema(session):
        return overview
    overview.waiting_jobs = int(
        session.scalar(text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'")) or 0
    )
    for row in session.execute(
        text(
            "SELECT w.id, w.last_heartbeat, "
            "(SELECT count(*) FROM procrastinate_jobs j "
            " WHERE j.worker_id = w.id AND j.status = 'doing') AS jobs "
            "FROM procrastinate_workers w ORDER BY w.id"
        )
    ):
        overview.workers.append(
            WorkerBeat(int(row.id), f"processor {row.id}", row.last_heartbeat, int(row.jobs))
        )
    return overview
