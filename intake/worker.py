"""One cycle of work: take new mail in, store it, tell the server, read it.

``intake poll`` runs :func:`poll_once`; the scheduled worker runs the same
function on an interval. The order inside a cycle is what makes it safe:

1. tell the server about messages already stored but not yet flagged (a crash
   between our commit and the server flag leaves such messages behind);
2. fetch UIDs above the highest one stored for this UIDVALIDITY, store each whole
   and commit it, then flag (or move) it on the server;
3. read every stored-but-unread submission.

A crash anywhere leaves every message either stored (and finished by the next
cycle) or not flagged (and fetched again by the next cycle, where the unique keys
make the second store a no-op).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from parsers.result import MB
from store import repo, work
from store.errors import StoreError

from .config import Settings
from .errors import IntakeError
from .log import bound
from .mail.message import FetchedMail
from .mail.outbox import SendReport
from .mail.sources import read_path
from .pipeline import Pipeline, ReadCounts

if TYPE_CHECKING:
    from .mail.imap import ImapInbox

__all__ = [
    "InboxBusy",
    "PollReport",
    "holder_id",
    "import_path",
    "inbox_name",
    "poll_imap",
    "poll_once",
    "run_cycle",
]

log = logging.getLogger(__name__)


@dataclass
class PollReport:
    """What one poll cycle did."""

    mailbox: str = ""
    uidvalidity: int = 0
    seen: int = 0
    stored: int = 0
    duplicates: int = 0
    references: list[str] = field(default_factory=list)
    read: ReadCounts = field(default_factory=ReadCounts)
    acks: SendReport = field(default_factory=SendReport)


def poll_imap(
    pipeline: Pipeline,
    inbox: ImapInbox,
    progress: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_batch: Callable[[], None] = lambda: None,
) -> PollReport:
    """Fetch and store every new message of an IMAP folder, flagging each after its commit.

    ``should_stop`` is asked after each batch (a stop request finishes the current
    batch, flags what is stored and returns); ``on_batch`` runs after each batch.
    """
    from .mail.imap import MAX_BATCH_BYTES

    report = PollReport(mailbox=inbox.name)
    batch_size = inbox.settings.batch_size
    with inbox, bound(mailbox=inbox.name):
        report.uidvalidity = validity = inbox.uidvalidity
        with pipeline.sessions() as session:
            leftover = repo.unflagged_uids(session, inbox.name, validity)
            watermark = repo.uid_watermark(session, inbox.name, validity)
            gaps = [row.uid for row in work.unfetched(session, inbox.name, validity)]
        _mark(pipeline, inbox, leftover)
        new = inbox.uids_after(watermark)
        log.info("poll", extra={"mailbox": inbox.name, "uidvalidity": validity, "new": len(new)})
        fetched = inbox.fetch(sorted(set(gaps) | set(new)))
        for chunk in _chunks(fetched, batch_size, MAX_BATCH_BYTES):
            # A UID the server left out is recorded before anything after it is stored,
            # so the watermark never passes it unrecorded.
            _record_gaps(pipeline, inbox)
            # One transaction per batch; the server hears of a message only after it.
            for stored in pipeline.store_fetched_many(chunk, inbox.name):
                _count(report, stored)
            _mark(pipeline, inbox, [mail.key.uid for mail in chunk if mail.key is not None])
            on_batch()
            if progress is not None:
                progress(len(chunk))
            if should_stop():
                break
        _record_gaps(pipeline, inbox)
        if gaps:
            with pipeline.sessions() as session:
                work.resolve_unfetched(session, inbox.name, validity)
    return report


def _chunks(
    mails: Iterator[FetchedMail], count: int, max_bytes: int
) -> Iterator[list[FetchedMail]]:
    """Batches of at most ``count`` messages and (beyond the first) ``max_bytes`` bytes.

    With the fetch's own byte cap this bounds what one cycle holds in memory: about
    the largest message plus twice ``max_bytes``, whatever ``batch_size`` says.
    """
    chunk: list[FetchedMail] = []
    held = 0
    for mail in mails:
        if chunk and held + len(mail.raw) > max_bytes:
            yield chunk
            chunk, held = [], 0
        chunk.append(mail)
        held += len(mail.raw)
        if len(chunk) >= count:
            # Stored before the next message is asked for: a poll killed during the
            # next FETCH has already committed (and flagged) this batch.
            yield chunk
            chunk, held = [], 0
    if chunk:
        yield chunk


def _record_gaps(pipeline: Pipeline, inbox: ImapInbox) -> None:
    missing = inbox.take_unfetched()
    if not missing:
        return
    log.warning(
        "the server did not return these UIDs, even alone; recorded and retried each poll",
        extra={"mailbox": inbox.name, "uids": missing},
    )
    with pipeline.sessions() as session:
        work.record_unfetched(session, inbox.name, inbox.uidvalidity, missing, pipeline.now())


def _mark(pipeline: Pipeline, inbox: ImapInbox, uids: list[int]) -> None:
    if not uids:
        return
    inbox.mark_stored(uids)
    with pipeline.sessions() as session:
        repo.mark_flagged(session, inbox.name, inbox.uidvalidity, uids)
        session.commit()


def _count(report: PollReport, stored: repo.StoredRaw) -> None:
    report.seen += 1
    if stored.created:
        report.stored += 1
        report.references.append(stored.reference)
    else:
        report.duplicates += 1


def import_path(
    pipeline: Pipeline, path: Path, progress: Callable[[int], None] | None = None
) -> PollReport:
    """Store every message of an .eml, mbox or Maildir; the files are left as they are."""
    report = PollReport(mailbox=f"file:{path.resolve()}")
    limit = int(pipeline.settings.limits.max_message_mb * MB)
    for mail in read_path(path, pipeline.now, limit):
        _count(report, pipeline.store_fetched(mail, report.mailbox))
        if progress is not None:
            progress(1)
    return report


def poll_once(
    pipeline: Pipeline,
    inbox_factory: Callable[[], ImapInbox] | None,
    progress: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_batch: Callable[[], None] = lambda: None,
    *,
    run_stages: bool = True,
) -> PollReport:
    """One cycle: take new mail from the configured inbox, read what is unread, send acks.

    With ``run_stages`` false (a poller on PostgreSQL) the stored mail's stages are
    left to the process workers: only storing and sending what is due happen here.
    """
    settings = pipeline.settings
    if inbox_factory is not None and run_stages:
        # The stages run in other processes as batches are stored, then here too.
        with pipeline.stages_in_parallel(should_stop) as stored:

            def after_batch() -> None:
                stored()
                on_batch()

            report = poll_imap(pipeline, inbox_factory(), progress, should_stop, after_batch)
    elif inbox_factory is not None:
        report = poll_imap(pipeline, inbox_factory(), progress, should_stop, on_batch)
    else:
        assert settings.maildir is not None
        report = import_path(pipeline, settings.maildir.path, progress)
    if run_stages and not should_stop():
        report.read = pipeline.read_pending(should_stop=should_stop)
    if not should_stop():
        report.acks = pipeline.send_acks()
    return report


class InboxBusy(IntakeError):
    """Raised when another process holds the poll lease of this inbox."""


def inbox_name(settings: Settings) -> str:
    if settings.imap is not None:
        from .mail.imap import imap_name  # imap_tools: only for an IMAP inbox

        return imap_name(settings.imap)
    assert settings.maildir is not None
    return f"file:{settings.maildir.path.resolve()}"


def holder_id() -> str:
    """Who holds a lease: host, process and a random part (PIDs are reused)."""
    return work.holder_id()


class _Heartbeat:
    """Renews the inbox lease every third of its time-to-live while a cycle holds it.

    If a renewal finds the lease taken (we stalled past the TTL and another process
    took over), :attr:`lost` is set and the cycle stops after its current batch.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        name: str,
        holder: str,
        ttl: dt.timedelta,
        now: Callable[[], dt.datetime],
    ) -> None:
        self._args = (sessions, name, holder, ttl, now)
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)

    def _beat(self) -> None:
        sessions, name, holder, ttl, now = self._args
        while not self._stop.wait(ttl.total_seconds() / 3):
            try:
                with sessions() as session:
                    if not work.take_lease_healing(session, name, holder, now(), ttl):
                        log.warning("lease lost", extra={"lease": name})
                        self.lost.set()
                        return
            except SQLAlchemyError as exc:  # a busy database: try again next beat
                log.warning("lease renewal failed: %s", exc)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_cycle(
    pipeline: Pipeline,
    inbox_factory: Callable[[], ImapInbox] | None,
    *,
    holder: str,
    lease_ttl: dt.timedelta,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[int], None] | None = None,
    run_stages: bool = True,
) -> PollReport:
    """One poll cycle under the inbox's lease, recorded in the health table.

    The lease is renewed by a heartbeat while the cycle runs; a holder on this host
    whose process is gone (SIGKILL, OOM) is taken over at once.

    Raises:
        InboxBusy: another live process is polling this inbox.
        MailboxError: the inbox could not be read (recorded as a failed cycle).
    """
    name = inbox_name(pipeline.settings)
    lease = f"poll:{name}"
    sessions, now = pipeline.sessions, pipeline.now
    with sessions() as session:
        if not work.take_lease_healing(session, lease, holder, now(), lease_ttl):
            other = repo.lease_holder(session, lease, now())
            raise InboxBusy(
                f"another process ({other}) is polling {name}; only one may at a time. "
                f"If it stopped, its lease lapses within {int(lease_ttl.total_seconds())} s "
                "(at once when it ran on this machine)."
            )
        run_id = repo.start_poll_run(session, name, now())
    heartbeat = _Heartbeat(sessions, lease, holder, lease_ttl, now)

    def stop() -> bool:
        return should_stop() or heartbeat.lost.is_set()

    try:
        with heartbeat:
            report = poll_once(pipeline, inbox_factory, progress, stop, run_stages=run_stages)
    except (IntakeError, StoreError, SQLAlchemyError) as exc:
        with sessions() as session:
            repo.finish_poll_run(session, run_id, now(), ok=False, error=str(exc)[:2000])
        raise
    finally:
        with sessions() as session:
            repo.release_lease(session, lease, holder)
    with sessions() as session:
        repo.finish_poll_run(session, run_id, now(), ok=True, stored=report.stored)
    return report
