"""``intake worker``: poll on a schedule, retry, and send the daily digest.

APScheduler 3 runs in the background while the main thread waits for a signal:

* a stages job runs every 30 s whatever stage is due (retries after a failure,
  ``intake reparse`` requests) and sends due acknowledgements;
* the poll job runs every ``[schedule] poll_every_minutes`` (one at a time, missed
  runs coalesced); a failed cycle is retried sooner, with backoff, up to the
  interval; each cycle also retries acknowledgements that are due;
* the digest job runs daily at ``[digest] send_at`` in the consultation's time
  zone (so 08:00 means 08:00 in BST and in GMT); a worker started after that time
  sends a digest not yet sent today;
* with ``[imap] idle = true`` a thread waits in IMAP IDLE and starts a poll as soon
  as the server announces new mail; polling stays the fallback.

The first SIGTERM or SIGINT lets the running job finish its current batch and
then stops; a second one stops at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import threading
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError

from store import repo
from store.errors import StoreError

from .app import App
from .errors import IntakeError, MailboxError
from .mail.oauth import LogOnce
from .staff.daily import send_digest
from .staff.erasure import PURGE_HOUR, erase, plan_purge
from .stages.queue import Dispatcher, run_processor
from .worker import InboxBusy, holder_id, run_cycle

__all__ = ["Worker", "digest_trigger", "poll_trigger"]

log = logging.getLogger(__name__)
ROLES = ("all", "poll", "process")
_RETRY_FIRST_S = 15.0
_STAGES_EVERY_S = 30.0  # due stages between polls: retries, reparse and resend requests


def poll_trigger(app: App) -> IntervalTrigger:
    return IntervalTrigger(
        seconds=app.settings.schedule.poll_every_minutes * 60,
        timezone=app.settings.consultation.zone,
    )


def digest_trigger(app: App) -> CronTrigger:
    """Daily at ``send_at``, wall-clock time in the consultation's zone."""
    send_at = app.settings.digest.send_at
    return CronTrigger(
        hour=send_at.hour,
        minute=send_at.minute,
        second=send_at.second,
        timezone=app.settings.consultation.zone,
    )


class Worker:
    """The long-running process: one instance per ``intake worker``."""

    def __init__(self, app: App, role: str = "all") -> None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; the roles are {', '.join(ROLES)}")
        self.app = app
        self.role = role
        self._dispatcher: Dispatcher | None = None
        self.holder = holder_id()
        self.stopping = threading.Event()
        self.failures = 0
        # The interval job and a retry job are separate jobs to APScheduler; this lock
        # keeps them from running two cycles at once in this process.
        self._cycle = threading.Lock()
        self._problems = LogOnce(log)
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(2)},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=app.settings.consultation.zone,
        )

    @property
    def interval_s(self) -> float:
        return self.app.settings.schedule.poll_every_minutes * 60

    @property
    def digest_on(self) -> bool:
        return self.app.settings.smtp is not None and bool(self.app.settings.digest.recipients)

    # --- jobs ------------------------------------------------------------------------

    def poll(self) -> None:
        """One cycle; failures are recorded and retried, never fatal."""
        if self.stopping.is_set():
            return
        if not self._cycle.acquire(blocking=False):
            # The stages job holds this process's cycle: poll as soon as it is done,
            # not an interval later (new mail must not wait behind a retry).
            self.scheduler.add_job(
                self.poll,
                "date",
                id="poll-retry",
                replace_existing=True,
                run_date=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2),
            )
            return
        try:
            self._poll()
        finally:
            self._cycle.release()

    def _poll(self) -> None:
        app = self.app
        ttl = dt.timedelta(seconds=app.settings.stages.lease_ttl_s)
        try:
            with app.pipeline() as pipeline:
                report = run_cycle(
                    pipeline,
                    app.inbox_factory(),
                    holder=self.holder,
                    lease_ttl=ttl,
                    should_stop=self.stopping.is_set,
                    run_stages=not self.queued,  # PostgreSQL: the process workers read
                )
        except InboxBusy as exc:
            log.warning("poll skipped: %s", exc)
            return
        except (IntakeError, StoreError, SQLAlchemyError) as exc:
            self.failures += 1
            delay = min(_RETRY_FIRST_S * 2 ** (self.failures - 1), self.interval_s)
            # Said once per distinct error (then at debug level): an outage must not flood the log.
            self._problems.problem("poll", f"poll failed, retrying with backoff: {exc}")
            log.debug("poll attempt %d failed; next in %.0f s", self.failures, delay)
            if not self.stopping.is_set():
                self.scheduler.add_job(
                    self.poll,
                    "date",
                    id="poll-retry",
                    replace_existing=True,
                    run_date=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay),
                )
            return
        if self.failures:
            self._problems.resolved("poll", "polling works again")
        self.failures = 0
        log.info(
            "poll done: %d new, %d read, %d acknowledged",
            report.stored,
            report.read.read,
            report.acks.sent,
        )
        if self.queued:
            self.dispatch()  # what was just stored goes to the process workers at once

    @property
    def queued(self) -> bool:
        """True on PostgreSQL: stages are jobs that process workers anywhere take."""
        return self.app.engine.dialect.name == "postgresql"

    @property
    def polls(self) -> bool:
        return self.role in ("poll", "all")

    def dispatch(self) -> None:
        """Queue a job for every stage that can run now (PostgreSQL)."""
        if self.stopping.is_set():
            return
        if self._dispatcher is None:
            self._dispatcher = Dispatcher(self.app)
        try:
            self._dispatcher.dispatch()
            if self.polls and self.app.settings.acks_on:
                # The process workers queue acknowledgements; the poller sends them.
                with self.app.pipeline() as pipeline:
                    pipeline.send_acks()
        except (IntakeError, StoreError, SQLAlchemyError) as exc:
            self._problems.problem("dispatch", f"queueing due stages failed: {exc}")
        else:
            self._problems.resolved("dispatch", "queueing due stages works again")

    def stages(self) -> None:
        """Run whatever stage is due (retries, `intake reparse` requests...) between polls."""
        if self.queued:
            self.dispatch()
            return
        if self.stopping.is_set() or not self._cycle.acquire(blocking=False):
            return
        try:
            with self.app.pipeline() as pipeline:
                pipeline.read_pending(should_stop=self.stopping.is_set)
                if not self.stopping.is_set():
                    pipeline.send_acks()
        except (IntakeError, StoreError, SQLAlchemyError) as exc:
            self._problems.problem("stages", f"running due stages failed: {exc}")
        finally:
            self._cycle.release()

    def digest(self) -> None:
        if self.stopping.is_set() or not self.digest_on:
            return
        mailer = self.app.mailer()
        assert mailer is not None
        try:
            run = send_digest(
                self.app.sessions, self.app.settings, mailer, self.app.now, scheduled=True
            )
        except (IntakeError, StoreError, SQLAlchemyError) as exc:
            log.warning("digest not sent, retrying in 10 minutes: %s", exc)
            self.scheduler.add_job(
                self.digest,
                "date",
                id="digest-retry",
                replace_existing=True,
                run_date=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10),
            )
            return
        if run is not None:
            log.info("digest sent")

    def purge(self) -> None:
        """Apply ``[retention] purge_after_days`` (daily; audited like `intake purge`)."""
        retention = self.app.settings.retention
        if self.stopping.is_set() or retention.purge_after_days <= 0:
            return
        now = self.app.now()
        cutoff = now - dt.timedelta(days=retention.purge_after_days)
        try:
            with self.app.sessions() as session:
                plan = plan_purge(session, cutoff, anonymise=retention.anonymise)
            if plan.ids:
                erase(self.app.sessions, self.app.engine, plan, now, action="retention purge")
        except (StoreError, SQLAlchemyError) as exc:
            log.warning("retention purge failed, trying again tomorrow: %s", exc)

    def _digest_due_now(self) -> bool:
        """True when today's send time has passed and today's digest is not sent."""
        settings = self.app.settings
        now = self.app.now().astimezone(settings.consultation.zone)
        if now.time() < settings.digest.send_at:
            return False
        with self.app.sessions() as session:
            run = repo.digest_for_day(session, now.date())
        return run is None or run.status != "sent"

    def idle_loop(self) -> None:
        """Wait in IMAP IDLE and poll as soon as mail arrives; reconnect with backoff."""
        factory = self.app.inbox_factory()
        assert factory is not None
        delay = _RETRY_FIRST_S
        while not self.stopping.is_set():
            try:
                with factory() as inbox:
                    delay = _RETRY_FIRST_S
                    while not self.stopping.is_set():
                        if inbox.wait_for_news(timeout=60):
                            self.scheduler.modify_job("poll", next_run_time=dt.datetime.now(dt.UTC))
            except MailboxError as exc:
                log.warning("IDLE connection lost, reconnecting in %.0f s: %s", delay, exc)
                self.stopping.wait(delay)
                delay = min(delay * 2, self.interval_s)

    # --- life cycle ------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.stopping.is_set():
            log.warning("second signal: stopping at once")
            os._exit(128 + signum)
        log.warning("signal %d: finishing the current message(s), then stopping", signum)
        self.stopping.set()

    def run(self, *, install_signals: bool = True) -> None:
        """Run until a signal (or :attr:`stopping`) asks to stop."""
        if install_signals:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        now = dt.datetime.now(dt.UTC)
        processes_here = self.role in ("process", "all")
        if self.polls:
            self.scheduler.add_job(self.poll, poll_trigger(self.app), id="poll", next_run_time=now)
        if self.queued and self.polls:
            every = self.app.settings.worker.sweep_every_s
            self.scheduler.add_job(self.dispatch, IntervalTrigger(seconds=every), id="stages")
        elif not self.queued and processes_here:
            # A poller runs the stages in its own cycle first; a processor starts now.
            # (APScheduler takes next_run_time=None as "paused": leave it out instead.)
            first = {} if self.polls else {"next_run_time": now}
            self.scheduler.add_job(
                self.stages, IntervalTrigger(seconds=_STAGES_EVERY_S), id="stages", **first
            )
        if self.polls:
            self._add_daily_jobs(now)
        log.info(
            "worker started (role %s): %s",
            self.role,
            self._describe(),
        )
        self.scheduler.start()
        idle = None
        if self.polls and self.app.settings.imap is not None and self.app.settings.imap.idle:
            idle = threading.Thread(target=self.idle_loop, name="imap-idle", daemon=True)
            idle.start()
        try:
            if self.queued and processes_here:
                run_processor(
                    lambda: App(self.app.settings, now=self.app.now),
                    concurrency=self.app.settings.worker.slots,
                    stopping=self.stopping,
                    name=self.holder,
                )
            while not self.stopping.wait(1.0):
                pass
        finally:
            self.scheduler.shutdown(wait=True)
            if self._dispatcher is not None:
                self._dispatcher.close()
            log.warning("worker stopped")

    def _describe(self) -> str:
        where = self.app.engine.url.render_as_string(hide_password=True)
        if not self.queued:
            return f"stages run in this process; database {where}"
        if self.role == "poll":
            return f"polling; stages queued for process workers; database {where}"
        slots = self.app.settings.worker.slots
        return f"stages taken from the queue, {slots} at a time; database {where}"

    def _add_daily_jobs(self, now: dt.datetime) -> None:
        """The digest and the retention purge: wherever the poll role runs, once."""
        if self.digest_on:
            self.scheduler.add_job(
                self.digest, digest_trigger(self.app), id="digest", misfire_grace_time=3600
            )
            if self._digest_due_now():
                self.scheduler.add_job(self.digest, "date", id="digest-catch-up", run_date=now)
        if self.app.settings.retention.purge_after_days > 0:
            self.scheduler.add_job(
                self.purge,
                CronTrigger(hour=PURGE_HOUR, timezone=self.app.settings.consultation.zone),
                id="purge",
                next_run_time=now,
            )
