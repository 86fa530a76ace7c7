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
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from parsers import ExtractionPool
from store import repo, work

from .mail.mime import message_id_of
from .mail.outbox import SendReport, send_due
from .stages import STAGES
from .stages.runner import StageReport, make_due, run_due

if TYPE_CHECKING:
    from .app import App
    from .mail.message import FetchedMail

__all__ = ["Pipeline", "ReadCounts"]


@dataclass
class ReadCounts:
    """What one pass of reading did."""

    read: int = 0
    failed: int = 0
    attachments: dict[str, int] = field(default_factory=dict)
    stages: StageReport = field(default_factory=StageReport)


class Pipeline:
    """Stores messages and runs their stages; built once per command or worker cycle."""

    def __init__(self, app: App, *, acks: bool = True, holder: str | None = None) -> None:
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
        """Run the due stages in a second thread while the caller stores more mail.

        Yields ``stored()``, to call after each commit: the thread then claims what is
        due. The stages' work is mostly the extraction workers' (other processes), so
        storing and reading overlap. On leaving, the thread finishes what is due and
        stops; :meth:`read_pending` afterwards reads anything left and reports it all.
        """
        reader = _Reader(self)
        reader.start()
        try:
            yield reader.wake
        finally:
            reader.finish()
        self._behind = reader.report

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
    merged = StageReport(dict(first.done), dict(first.failed), [*first.errors, *second.errors])
    for name, count in second.done.items():
        merged.done[name] = merged.done.get(name, 0) + count
    for name, count in second.failed.items():
        merged.failed[name] = merged.failed.get(name, 0) + count
    return merged


class _Reader:
    """The thread behind :meth:`Pipeline.reading_alongside`.

    Only this thread uses the extraction pool and the stage cache while it runs;
    the caller's thread only stores. An error in the thread is raised again by
    :meth:`finish`, in the caller's thread.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._wanted = threading.Event()
        self._done = threading.Event()
        self._error: BaseException | None = None
        self.report = StageReport()
        self._thread = threading.Thread(target=self._run, name="stages", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wanted.set()

    def finish(self) -> None:
        self._done.set()
        self._wanted.set()
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        pipeline = self._pipeline
        try:
            while not self._done.is_set():
                self._wanted.wait()
                self._wanted.clear()
                if self._done.is_set():
                    return  # what is left is read by the caller's read_pending
                report = run_due(
                    pipeline.app,
                    stages=pipeline.stage_names,
                    holder=pipeline.holder,
                    should_stop=self._done.is_set,
                )
                self.report = _merged(self.report, report)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self._error = exc
