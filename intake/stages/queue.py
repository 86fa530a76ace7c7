"""Stages as jobs on PostgreSQL: any number of processors, on any number of machines.

With SQLite, one machine runs every stage in-process (:mod:`.runner`). With
PostgreSQL, each stage of each submission that can run now becomes a procrastinate
job (task ``intake.run_stage``, queue ``stages``), so that ``intake worker --role
process`` on as many hosts as the team can lend shares the work:

* **Our table decides, the queue only asks.** ``submission_stages`` stays the record
  of what is done. A job runs the ordinary runner for its one submission and stage
  (``run_due(only=[id])``, from its stage on through every later one that is due):
  it claims each row exactly as an in-process runner would, so a job for a stage
  already done, or claimed by someone else, does nothing.
* **Never queued twice.** Each job carries the queueing lock ``stage:NAME:ID``:
  procrastinate keeps at most one waiting job per lock, and the sweep asks only for
  submissions with no job waiting (``store.queue.ready_to_queue``).
* **Swept, not only pushed.** After a job, its submission's next stage is queued at
  once; besides, every poller and processor sweeps every ``[worker] sweep_every_s``
  for stages that became claimable some other way (a retry whose wait is over,
  ``intake reparse``, a claim whose holder died).
* **A lost processor's work comes back.** A processor sends procrastinate a heartbeat
  every ``stall_after_s / 3`` seconds and renews its stage claims as often; when it
  dies, a live processor marks its jobs failed after ``stall_after_s`` (their rows
  are only requests) and the sweep queues the stages again as soon as the claim is
  free: at once when the dead process was on the same host, else when its claim
  lapses (``[stages] claim_ttl_s`` after its last renewal).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

import procrastinate
import psycopg
from procrastinate import exceptions as pq_exceptions
from procrastinate.jobs import Status
from sqlalchemy.exc import SQLAlchemyError

from store import queue as store_queue
from store import work

from ..errors import IntakeError
from . import STAGES
from .runner import run_due

if TYPE_CHECKING:
    from parsers import ExtractionPool

    from ..config import WorkerSettings
    from ..context import AppContext

__all__ = ["QUEUE", "TASK", "Dispatcher", "QueueError", "conninfo", "run_processor"]

log = logging.getLogger(__name__)

TASK = "intake.run_stage"
QUEUE = "stages"


class QueueError(IntakeError):
    """The job queue could not be reached or used (PostgreSQL down, schema missing)."""


def conninfo(app: AppContext) -> str:
    """The libpq address of the app's PostgreSQL database (password included: never log it)."""
    url = app.engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class Dispatcher:
    """Queues a job for each stage that can run now and has no job waiting (sync API)."""

    def __init__(self, app: AppContext) -> None:
        self.app = app
        connector = procrastinate.SyncPsycopgConnector(
            conninfo=conninfo(app), min_size=1, max_size=4
        )
        self._queue = procrastinate.App(connector=connector)
        self._opened = False
        self._lock = threading.Lock()

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._opened:
                self._queue.close()
                self._opened = False

    def _open(self) -> None:
        with self._lock:
            if not self._opened:
                self._queue.open()
                self._opened = True

    def _defer(self, stage: str, submission_id: int) -> int:
        deferrer = self._queue.configure_task(
            TASK, queue=QUEUE, queueing_lock=store_queue.queue_lock(stage, submission_id)
        )
        try:
            deferrer.defer(stage=stage, submission_id=submission_id)
        except pq_exceptions.AlreadyEnqueued:
            return 0  # another sweeper queued it a moment ago
        return 1

    def dispatch(self, only: Sequence[int] | None = None) -> int:
        """Queue every claimable stage (of ``only``, if given); the number of jobs queued."""
        order = list(STAGES)
        now = self.app.now()
        with self.app.sessions() as session:
            wanted = [
                (name, store_queue.ready_to_queue(session, name, order[:i], now, only=only))
                for i, name in enumerate(order)
            ]
        if not any(ids for _, ids in wanted):
            return 0
        queued = 0
        try:
            self._open()
            for name, ids in wanted:
                for submission_id in ids:
                    queued += self._defer(name, submission_id)
        except (psycopg.Error, pq_exceptions.ProcrastinateException) as exc:
            raise QueueError(f"could not queue stage jobs: {exc}") from exc
        if queued:
            log.debug("queued %d stage job(s)", queued)
        return queued


class _ClaimHeartbeat:
    """Renews this holder's stage claims while a job runs, so a long OCR keeps its claim."""

    def __init__(self, app: AppContext, holder: str, every_s: float) -> None:
        self.app = app
        self.holder = holder
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="claim-heartbeat", daemon=True)

    def _beat(self) -> None:
        ttl = dt.timedelta(seconds=self.app.settings.stages.claim_ttl_s)
        while not self._stop.wait(self.every_s):
            now = self.app.now()
            with self.app.sessions() as session:
                store_queue.extend_claims(session, self.holder, now + ttl, now)

    def __enter__(self) -> _ClaimHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_processor(
    make_app: Callable[[], AppContext],
    *,
    concurrency: int,
    stopping: threading.Event,
    name: str,
) -> None:
    """Run stage jobs until ``stopping`` is set; the running jobs finish first.

    Each of the ``concurrency`` job slots has its own App (its own database pool and
    one extraction process), because an extraction pool serves one thread.
    """
    slots: queue.Queue[AppContext] = queue.Queue()
    apps = [make_app() for _ in range(concurrency)]
    for slot_app in apps:
        slot_app.pool_factory = _one_process_pool(slot_app)
        slots.put(slot_app)
    first = apps[0]
    with first.sessions() as session:
        if not store_queue.has_queue_schema(session):
            for slot_app in apps:
                slot_app.close()
            raise QueueError(
                "the job queue's tables are missing from this database; run: intake db upgrade"
            )
    worker_settings = first.settings.worker
    connector = procrastinate.PsycopgConnector(
        conninfo=conninfo(first), min_size=1, max_size=concurrency + 2
    )
    qapp = procrastinate.App(connector=connector)
    dispatcher = Dispatcher(first)

    @qapp.task(name=TASK, queue=QUEUE)
    def run_stage(stage: str, submission_id: int) -> str:
        if stage not in STAGES:
            return f"unknown stage {stage!r}: nothing done"
        slot_app = slots.get()
        try:
            holder = work.holder_id()
            with _ClaimHeartbeat(slot_app, holder, worker_settings.stall_after_s / 3):
                # This stage and every later one that is due for the submission, in
                # order, in this one job: a queue round trip per stage would cost more
                # than most stages do.
                report = run_due(slot_app, only=[submission_id], holder=holder)
        finally:
            slots.put(slot_app)
        dispatcher.dispatch(only=[submission_id])  # its next stage, without waiting
        if report.errors:
            return f"{stage} of {submission_id} failed: {report.errors[0][2]}"
        done = ", ".join(report.done) or "nothing to do"
        return f"{submission_id} from {stage}: {done}"

    async def main() -> None:
        async with qapp.open_async():
            worker = asyncio.create_task(
                qapp.run_worker_async(
                    queues=[QUEUE],
                    name=name,
                    concurrency=concurrency,
                    wait=True,
                    install_signal_handlers=False,
                    update_heartbeat_interval=max(worker_settings.stall_after_s / 3, 1.0),
                    stalled_worker_timeout=worker_settings.stall_after_s,
                    delete_jobs="successful",
                    listen_notify=True,
                )
            )
            sweeper = asyncio.create_task(_sweep(qapp, dispatcher, worker_settings, stopping))
            while not stopping.is_set() and not worker.done():
                await asyncio.sleep(0.2)
            sweeper.cancel()
            if not worker.done():
                log.warning("processor stopping: letting the running job(s) finish")
                worker.cancel()
            await asyncio.gather(worker, sweeper, return_exceptions=True)

    log.warning(
        "processor %s started: %d job slot(s), queue %r on %s",
        name,
        concurrency,
        QUEUE,
        first.engine.url.render_as_string(hide_password=True),
    )
    try:
        asyncio.run(main())
    finally:
        dispatcher.close()
        for slot_app in apps:
            slot_app.close()
        log.warning("processor %s stopped", name)


_SWEEP_ERRORS = (QueueError, SQLAlchemyError, psycopg.Error, pq_exceptions.ProcrastinateException)


def _one_process_pool(app: AppContext) -> Callable[[], ExtractionPool]:
    def make() -> ExtractionPool:
        from parsers import ExtractionPool

        return ExtractionPool(app.settings.limits.parser_limits(), processes=1)

    return make


async def _sweep(
    qapp: procrastinate.App,
    dispatcher: Dispatcher,
    settings: WorkerSettings,
    stopping: threading.Event,
) -> None:
    """Every few seconds: fail the jobs of dead processors, queue what can run."""
    every_s, stall_s = settings.sweep_every_s, settings.stall_after_s
    while not stopping.is_set():
        try:
            for job in await qapp.job_manager.get_stalled_jobs(
                queue=QUEUE, seconds_since_heartbeat=stall_s
            ):
                # Only a request: the stage row decides whether it runs again.
                await qapp.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
                log.warning("job %s of a processor that stopped answering: set aside", job.id)
            await asyncio.to_thread(dispatcher.dispatch)
        except _SWEEP_ERRORS as exc:
            # A database that went away: the next sweep tries again.
            log.warning("queue sweep failed, trying again: %s", exc)
        await asyncio.sleep(every_s)
