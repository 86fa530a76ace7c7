"""Run the stages: claim due submissions, run each under its own catch-all, record.

For each stage in registry order, :func:`run_due` claims a batch of submissions
whose stage is due (``store.work.claim``: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
a conditional ``UPDATE`` on SQLite) and runs the stage for the whole batch in one
transaction, recording ``done`` in it (one commit per batch, not per message). If
any submission raises, that transaction is rolled back and each submission of the
batch runs in its own transaction instead. There, anything the function raises is
caught -- this is the one catch-all of the program -- the transaction is rolled
back, and the failure is recorded in a fresh one: attempts
+ 1, the reason, and ``failed`` after ``[stages] max_attempts`` (before that the
submission waits ``retry_after_s``, doubling, and is tried again). One submission's
failure never stops another's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from store import work
from store.db import is_busy, redoable_work

from ..log import bound
from . import STAGES, Stage

if TYPE_CHECKING:
    from ..context import AppContext

__all__ = ["StageReport", "make_due", "run_due", "run_stage"]

log = logging.getLogger(__name__)


@dataclass
class StageReport:
    """What one pass of the runner did, per stage."""

    done: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)  # attempts that failed
    errors: list[tuple[int, str, str]] = field(default_factory=list)  # (id, stage, reason)
    busy: int = 0  # put back as due because the database was busy (not failures)

    def count(self, stage: str, ok: bool) -> None:
        bucket = self.done if ok else self.failed
        bucket[stage] = bucket.get(stage, 0) + 1


def make_due(session: Session, ids: Iterable[int], stages: Sequence[str], now: dt.datetime) -> int:
    """Make ``stages`` due (again) for these submissions; the caller commits.

    ``read`` brings along every stage registered with ``redo_after_read``.
    """
    unknown = [name for name in stages if name not in STAGES]
    if unknown:
        raise ValueError(f"unknown stage {unknown[0]!r}; the stages are {', '.join(STAGES)}")
    names = list(stages)
    if "read" in names:
        names += [s.name for s in STAGES.values() if s.redo_after_read and s.name not in names]
    return work.mark_due(session, ids, names, now)


def run_due(
    app: AppContext,
    *,
    stages: Sequence[str] | None = None,
    only: Sequence[int] | None = None,
    holder: str | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[int], None] | None = None,
) -> StageReport:
    """Run every due stage (or those named) until nothing is claimable; what was done.

    Args:
        only: restrict to these submissions (what a command took in).
        holder: who claims; a fresh ``host:pid:random`` by default.
    """
    with redoable_work():  # a stage whose commit a power loss undoes is simply due again
        return _run_due(app, stages, only, holder or work.holder_id(), should_stop, progress)


def _run_due(
    app: AppContext,
    stages: Sequence[str] | None,
    only: Sequence[int] | None,
    holder: str,
    should_stop: Callable[[], bool],
    progress: Callable[[int], None] | None,
) -> StageReport:
    report = StageReport()
    names = list(stages) if stages is not None else list(STAGES)
    order = list(STAGES)
    for name in names:
        stage = STAGES[name]
        before = order[: order.index(name)]
        last = 0
        while not should_stop():
            ids = _claim(app, stage, holder, before, only, last)
            if ids is None:
                # Still busy: what is due stays due, for the next pass or cycle.
                report.busy += 1
                break
            if not ids:
                break
            last = max(ids)
            if should_stop():
                # Hand back what this pass will not do, so another runner need not
                # wait for the claims to expire.
                with app.sessions() as session:
                    work.release(session, ids, name, holder, app.now())
                    session.commit()
                break
            if not _run_batch(app, stage, ids, holder, report):
                for submission_id in ids:  # one of them failed: each on its own
                    run_stage(app, stage, submission_id, holder, report)
            for submission_id in ids:  # nothing prepared outlives its batch
                app.stage_cache.pop((name, submission_id), None)
            if name == "read" and progress is not None:
                progress(len(ids))
    return report


def _run_batch(
    app: AppContext, stage: Stage, ids: list[int], holder: str, report: StageReport
) -> bool:
    """Run the stage for a claimed batch in ONE transaction: one commit, not one each.

    All or nothing: if any submission raises, nothing is kept and False is returned,
    and the caller runs each one in its own transaction under the catch-all (so the
    good ones are done and the bad one is recorded). Each submission's objects are
    flushed and let go as soon as it is done, so memory holds one at a time.
    """
    try:
        if stage.prepare is not None:
            stage.prepare(app, ids)
        with app.sessions() as session:
            if stage.run_many is not None:
                with bound(stage=stage.name):
                    stage.run_many(app, session, ids)
                session.flush()
                session.expunge_all()
            else:
                for submission_id in ids:
                    with bound(stage=stage.name, submission=submission_id):
                        stage.run(app, session, submission_id)
                    session.flush()
                    session.expunge_all()
            work.mark_done_many(session, ids, stage.name, holder, app.now())
            session.commit()
    except Exception:  # noqa: BLE001 - retried one by one under run_stage's catch-all
        log.info("a batch failed; running its submissions one at a time", exc_info=True)
        return False
    for _ in ids:
        report.count(stage.name, ok=True)
    return True


# Claims tried in a row while the database is busy before the pass gives up on a stage.
_CLAIM_TRIES = 3


def _claim(
    app: AppContext,
    stage: Stage,
    holder: str,
    before: list[str],
    only: Sequence[int] | None,
    after_id: int,
) -> list[int] | None:
    """Claim the next batch; None when the database stayed busy (the work stays due).

    SQLite waits its busy timeout for the write lock on each try; a write that found
    its snapshot overtaken by another process's commit fails at once and succeeds when
    tried again.
    """
    config = app.settings.stages
    for attempt in range(1, _CLAIM_TRIES + 1):
        try:
            with app.sessions() as session:
                return work.claim(
                    session,
                    stage.name,
                    holder,
                    app.now(),
                    dt.timedelta(seconds=config.claim_ttl_s),
                    limit=config.batch,
                    before=before,
                    only=only,
                    after_id=after_id,
                )
        except Exception as exc:
            if not is_busy(exc):
                raise
            log.warning("database busy while claiming (try %d of %d): %s", attempt,
                        _CLAIM_TRIES, str(exc).splitlines()[0][:300],
                        extra={"stage": stage.name})
    return None


def run_stage(
    app: AppContext, stage: Stage, submission_id: int, holder: str, report: StageReport
) -> bool:
    """Run one claimed stage of one submission; True when it is done."""
    with bound(stage=stage.name, submission=submission_id), contextlib.ExitStack() as context:
        try:
            with app.sessions() as session:
                context.enter_context(bound(reference=work.reference_of(session, submission_id)))
                stage.run(app, session, submission_id)
                work.mark_done(session, submission_id, stage.name, holder, app.now())
                session.commit()
        except Exception as exc:  # noqa: BLE001 - the one catch-all: record it, go on
            reason = f"{type(exc).__name__}: {exc}"
            if is_busy(exc):
                # Another process held the database too long: not this submission's
                # fault. Due again shortly, no attempt counted.
                log.warning("database busy; the stage is due again: %s", reason[:300])
                _record_failure(app, stage, submission_id, holder, reason, busy=True)
                report.busy += 1
                return False
            log.exception("stage failed")
            _record_failure(app, stage, submission_id, holder, reason)
            report.count(stage.name, ok=False)
            report.errors.append((submission_id, stage.name, reason))
            return False
    report.count(stage.name, ok=True)
    return True


def _record_failure(
    app: AppContext,
    stage: Stage,
    submission_id: int,
    holder: str,
    reason: str,
    *,
    busy: bool = False,
) -> None:
    config = app.settings.stages
    try:
        with app.sessions() as session:
            work.record_failure(
                session,
                submission_id,
                stage.name,
                holder,
                reason,
                app.now(),
                max_attempts=config.max_attempts,
                retry_after=dt.timedelta(seconds=config.retry_after_s),
                busy=busy,
            )
            session.commit()
    except Exception:  # noqa: BLE001 - the claim then lapses and the stage is due again
        log.exception(
            "could not record the failure; the stage is due again when its claim lapses",
            extra={"stage": stage.name},
        )
        return
    if busy or stage.on_failure is None:
        return
    try:
        with app.sessions() as session:
            stage.on_failure(app, session, submission_id, reason[:2000])
            session.commit()
    except Exception:  # noqa: BLE001 - showing the failure must not stop the others
        log.exception("recording a failure failed", extra={"stage": stage.name})
