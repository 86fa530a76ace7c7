"""What a command does with mail it took in: store it, then run its due stages.

1. :meth:`Pipeline.store_fetched_many` stores the bytes and, in the same
   transaction, marks each new submission's stages due (``ack`` only when
   acknowledgements are wanted; otherwise its acknowledgement is recorded ``off``).
2. :meth:`Pipeline.read_pending` runs every due stage through the runner
   (:mod:`intake.stages.runner`), which claims submissions and records each one's
   success or failure: one bad message never stops the others.
3. :meth:`Pipeline.send_acks` sends the acknowledgements that are due, each under
   an exclusive outbox claim.

A backfill (``intake import``) stores and reads at once: :meth:`Pipeline.reading_alongside`
runs the stages in a second thread while the caller stores further messages, so the
extraction workers read the first files while later ones are still being stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import multiprocessing
import pickle
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from parsers import ExtractionPool
from store import repo, work

from .mail.mime import message_id_of
from .mail.outbox import SendReport, send_due
from .stages import STAGES
from .stages.runner import StageReport, make_due, run_due

if TYPE_CHECKING:
    from .context import AppContext
    from .mail.message import FetchedMail

__all__ = ["Pipeline", "ReadCounts", "stage_loop"]

log = logging.getLogger(__name__)


@dataclass
class ReadCounts:
    """What one pass of reading did."""

    read: int = 0
    failed: int = 0
    attachments: dict[str, int] = field(default_factory=dict)
    stages: StageReport = field(default_factory=StageReport)


class Pipeline:
    """Stores messages and runs their stages; built once per command or worker cycle."""

    def __init__(self, app: AppContext, *, acks: bool = True, holder: str | None = None) -> None:
        self.app = app
        self.settings = app.settings
        self.sessions = app.sessions
        self.now = app.now
        self.mailer = app.mailer()
        self.acks = acks and self.mailer is not None and self.settings.acks_on
        self.cutoff = app.cutoff
        self.holder = holder or work.holder_id()
        self._behind: StageReport | None = None  # what reading_alongside did

    @property
    def pool(self) -> ExtractionPool:
        return self.app.pool

    def close(self) -> None:
        self.app.close_pool()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def stage_names(self) -> list[str]:
        """The stages this pipeline runs: all, less those that send mail when acks are off."""
        return [s.name for s in STAGES.values() if self.acks or not s.sends_mail]

    # --- store -------------------------------------------------------------------------

    def store_fetched(self, mail: FetchedMail, source: str) -> repo.StoredRaw:
        """Store one fetched message whole and commit; a second sighting is a no-op."""
        return self.store_fetched_many([mail], source)[0]

    def store_fetched_many(self, mails: Sequence[FetchedMail], source: str) -> list[repo.StoredRaw]:
        """Store fetched messages whole, mark their stages due, in one transaction; commit.

        Nothing has read them yet and the server is told only after this returns, so
        a crash before the commit loses nothing: the messages are fetched again.
        """
        return self.store_sourced([(mail, source) for mail in mails])

    def store_sourced(self, found: Sequence[tuple[FetchedMail, str]]) -> list[repo.StoredRaw]:
        """Like :meth:`store_fetched_many`, each message with its own source (a file)."""
        items = []
        for mail, source in found:
            sha256 = hashlib.sha256(mail.raw).hexdigest()
            message_id, derived = message_id_of(mail.raw, sha256)
            key = (mail.key.mailbox, mail.key.uidvalidity, mail.key.uid) if mail.key else None
            items.append(
                repo.RawItem(
                    raw=mail.raw,
                    sha256=sha256,
                    message_id=message_id,
                    message_id_derived=derived,
                    source=source,
                    fetched_at=mail.fetched_at,
                    key=key,
                    internal_date=mail.internal_date,
                    size=mail.size,
                    header_only=mail.oversize,
                )
            )
        with self.sessions() as session:
            return repo.store_raws(
                session,
                items,
                self.settings.consultation.reference_prefix,
                stages=self.stage_names,
                acks_off=not self.acks,
                now=self.now(),
            )

    # --- stages ------------------------------------------------------------------------

    @contextlib.contextmanager
    def reading_alongside(self) -> Iterator[Callable[[], None]]:
        """Run the due stages in two more threads while the caller stores more mail.

        Yields ``stored()``, to call after each commit: one thread then reads what is
        due, and wakes the other after each batch it has read, to run the later stages
        (classify, index, tag...) of that batch. Reading is mostly the extraction
        workers' work (other processes), so storing, reading and the later stages
        overlap, and the workers do not wait at the end for every later stage of the
        whole import. Leaving normally, the threads finish everything due (reading
        first); after an error they stop after their current batch, and
        :meth:`read_pending` runs what they left. Either way it reports it all.
        """
        names = self.stage_names
        later = _StageThread(self, names[1:])
        reader = _StageThread(self, names[:1], after_batch=later.wake)
        reader.start()
        later.start()
        stop = True
        try:
            yield reader.wake
            stop = False
        finally:
            try:
                reader.finish(stop=stop)
            finally:
                later.finish(stop=stop)
        self._behind = _merged(reader.report, later.report)

    @property
    def stage_processes(self) -> int:
        """How many processes run a poll's stages: ``[stages] processes``, or 1 when
        this pipeline's clock cannot be handed to another process (a test's fixed one)."""
        wanted = self.settings.stages.processes
        if wanted > 1:
            try:
                pickle.dumps(self.now)
            except (pickle.PicklingError, AttributeError, TypeError):
                return 1
        return wanted

    @contextlib.contextmanager
    def stages_in_parallel(self, should_stop: Callable[[], bool]) -> Iterator[Callable[[], None]]:
        """Run the due stages in other processes while this one stores more mail.

        Yields ``stored()``, to call after each commit; the second call starts
        ``[stages] processes - 1`` stage processes (a poll of one batch starts none). They
        claim what is due exactly as this process does (``store.work``), so no stage
        of a submission runs twice. On leaving, this process runs the due stages too,
        alongside them, until nothing is left; then :meth:`read_pending` reports it all.
        With one process this is only the leaving part.
        """
        helpers: list[_StageProcess] = []
        count = self.stage_processes - 1
        batches = 0

        def stored() -> None:
            nonlocal batches
            batches += 1
            # From the second batch on: a poll of one batch (most polls) is over before
            # a process could start, so it runs its stages itself.
            if batches >= 2 and len(helpers) < count:
                helpers.extend(_StageProcess(self) for _ in range(count - len(helpers)))
            for helper in helpers:
                helper.wake()

        report = StageReport()
        finished = False
        try:
            yield stored
            if not should_stop():
                for helper in helpers:
                    helper.finishing()
                report = run_due(
                    self.app, stages=self.stage_names, holder=self.holder, should_stop=should_stop
                )
            finished = True
        finally:
            # After an error or a stop request the helpers finish their batch and go:
            # what is left is due, for the next cycle (or read_pending) to run.
            for helper in helpers:
                report = _merged(report, helper.finish(stop=not finished or should_stop()))
        self._behind = report

    def read_pending(
        self,
        progress: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> ReadCounts:
        """Run every due stage (read, then ack when wanted, then later ones)."""
        report = run_due(
            self.app,
            stages=self.stage_names,
            holder=self.holder,
            should_stop=should_stop,
            progress=progress,
        )
        behind, self._behind = self._behind, None
        if behind is not None:
            report = _merged(behind, report)
        return _counts(report)

    def read(
        self,
        ids: Iterable[int],
        progress: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> ReadCounts:
        """Make ``read`` due again for these submissions and run it (``intake reparse``)."""
        wanted = list(ids)
        with self.sessions() as session:
            make_due(session, wanted, ["read"], self.now())
            session.commit()
        redo = ["read", *(s.name for s in STAGES.values() if s.redo_after_read)]
        report = run_due(
            self.app,
            stages=redo,
            only=wanted,
            holder=self.holder,
            should_stop=should_stop,
            progress=progress,
        )
        return _counts(report)

    def send_acks(self) -> SendReport:
        """Send the acknowledgements that are due (nothing when acknowledgements are off)."""
        if self.mailer is None or not self.acks:
            return SendReport()
        return send_due(
            self.sessions, self.mailer, self.settings, self.cutoff, self.now, holder=self.holder
        )


def _counts(report: StageReport) -> ReadCounts:
    return ReadCounts(
        read=report.done.get("read", 0), failed=report.failed.get("read", 0), stages=report
    )


def _merged(first: StageReport, second: StageReport) -> StageReport:
    merged = StageReport(
        dict(first.done),
        dict(first.failed),
        [*first.errors, *second.errors],
        first.busy + second.busy,
    )
    for name, count in second.done.items():
        merged.done[name] = merged.done.get(name, 0) + count
    for name, count in second.failed.items():
        merged.failed[name] = merged.failed.get(name, 0) + count
    return merged


class _StageThread:
    """A thread behind :meth:`Pipeline.reading_alongside`: runs ``stages`` when woken.

    Only the reading thread uses the extraction pool; each thread claims and caches
    under its own stages' names. :meth:`finish` either lets the thread finish what
    is due (draining) or stops it after its current batch; an error in the thread is
    raised again there, in the caller's thread.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        stages: list[str],
        after_batch: Callable[[], None] | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._stages = stages
        self._after_batch = after_batch
        self._wanted = threading.Event()
        self._draining = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self.report = StageReport()
        name = "stages: " + (", ".join(stages) or "none")
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wanted.set()

    def finish(self, *, stop: bool = False) -> None:
        """Drain (one last pass until nothing of its stages is due) or, with ``stop``,
        stop after the current batch; wait for the thread."""
        (self._stop if stop else self._draining).set()
        self._wanted.set()
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        pipeline = self._pipeline
        after = self._after_batch
        try:
            while not self._stop.is_set():
                self._wanted.wait()
                self._wanted.clear()
                last = self._draining.is_set()
                if self._stop.is_set() or not self._stages:
                    return  # what is left is run by the caller's read_pending
                report = run_due(
                    pipeline.app,
                    stages=self._stages,
                    holder=pipeline.holder,
                    should_stop=self._stop.is_set,
                    progress=None if after is None else lambda _done: after(),
                )
                self.report = _merged(self.report, report)
                if last:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self._error = exc


class _StageProcess:
    """A process of its own that runs the due stages (:meth:`Pipeline.stages_in_parallel`).

    It builds its own application from the same settings and clock, claims under its
    own holder (so a crash frees its claims at once, as any process's), and returns
    what it did when told to finish. If it fails or dies, that is logged and what it
    left is due again: the caller's own pass (or the next cycle) runs it.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        context = multiprocessing.get_context("spawn")  # no inherited connections
        self._wanted = context.Event()
        self._finishing = context.Event()
        self._stop = context.Event()
        self._results, sender = context.Pipe(duplex=False)
        verbose = {logging.WARNING: 0, logging.INFO: 1}.get(
            logging.getLogger("intake").getEffectiveLevel(), 2
        )
        self._process = context.Process(
            target=pipeline.app.stage_process,
            args=(
                pipeline.settings,
                pipeline.now,
                pipeline.stage_names,
                verbose,
                (self._wanted, self._finishing, self._stop),
                sender,
            ),
            name="intake-stages",
            # Not a daemon: a daemon may not start processes, and reading mail with
            # attachments starts extraction workers. It still ends with this process:
            # it stops when told to, or when it sees this process gone.
            daemon=False,
        )
        self._process.start()
        sender.close()  # the child's end: EOF here once the child is gone

    def wake(self) -> None:
        self._wanted.set()

    def finishing(self) -> None:
        """Nothing more will be stored: finish what is due, then stop."""
        self._finishing.set()
        self._wanted.set()

    def finish(self, *, stop: bool = False) -> StageReport:
        """Wait for the process (asked to stop after its batch when ``stop``); its report."""
        if stop:
            self._stop.set()
        self.finishing()
        try:
            outcome, value = self._results.recv()
        except EOFError:  # died without a word: killed, out of memory
            outcome, value = "error", f"it ended with exit code {self._process.exitcode}"
        self._process.join()
        self._results.close()
        if outcome == "error" or not isinstance(value, StageReport):
            log.error("a stage process failed; its work is due again: %s", value)
            return StageReport()
        return value


def stage_loop(
    app: AppContext, stage_names: list[str], events: tuple[Any, Any, Any], results: Any
) -> None:
    """The work of a :class:`_StageProcess` (``intake.app.stage_process`` runs it with
    an application of its own): passes over the due stages until told to finish."""
    wanted, finishing, stop = events
    parent = multiprocessing.parent_process()

    def stopping() -> bool:
        # A parent killed (SIGKILL, the OOM killer) takes this process with it: what
        # it claimed is freed at once, as the claims of any dead process on this host.
        return stop.is_set() or (parent is not None and not parent.is_alive())

    report = StageReport()
    try:
        while not stopping():
            last = finishing.is_set()
            if not last:
                wanted.wait(1.0)
                wanted.clear()
            found = run_due(app, stages=stage_names, should_stop=stopping)
            report = _merged(report, found)
            if last and not (found.done or found.failed):
                break  # told nothing more comes, and nothing was left
        results.send(("ok", report))
    except BaseException as exc:  # noqa: BLE001 - handed to the parent, which logs it
        results.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        results.close()
