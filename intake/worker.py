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

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from store import repo

from .outbox import SendReport
from .pipeline import Pipeline, ReadCounts
from .poller import ImapInbox
from .sources import read_path

__all__ = ["PollReport", "import_path", "poll_imap", "poll_once"]

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
) -> PollReport:
    """Fetch and store every new message of an IMAP folder, flagging each after its commit."""
    report = PollReport(mailbox=inbox.name)
    batch_size = inbox.settings.batch_size
    with inbox:
        report.uidvalidity = validity = inbox.uidvalidity
        with pipeline.sessions() as session:
            leftover = repo.unflagged_uids(session, inbox.name, validity)
            watermark = repo.uid_watermark(session, inbox.name, validity)
        _mark(pipeline, inbox, leftover)
        new = inbox.uids_after(watermark)
        log.info("poll", extra={"mailbox": inbox.name, "uidvalidity": validity, "new": len(new)})
        done: list[int] = []
        for mail in inbox.fetch(new):
            stored = pipeline.store_fetched(mail, inbox.name)
            _count(report, stored)
            assert mail.key is not None
            done.append(mail.key.uid)
            if progress is not None:
                progress(1)
            if len(done) >= batch_size:
                _mark(pipeline, inbox, done)
                done = []
        _mark(pipeline, inbox, done)
    return report


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
    limit = int(pipeline.settings.limits.max_message_mb * 1024 * 1024)
    for mail in read_path(path, pipeline.now, limit):
        _count(report, pipeline.store_fetched(mail, report.mailbox))
        if progress is not None:
            progress(1)
    return report


def poll_once(
    pipeline: Pipeline,
    inbox_factory: Callable[[], ImapInbox] | None,
    progress: Callable[[int], None] | None = None,
) -> PollReport:
    """One cycle: take new mail from the configured inbox, then read what is unread."""
    settings = pipeline.settings
    if inbox_factory is not None:
        report = poll_imap(pipeline, inbox_factory(), progress)
    else:
        assert settings.maildir is not None
        report = import_path(pipeline, settings.maildir.path, progress)
    report.read = pipeline.read_pending()
    report.acks = pipeline.send_acks()
    return report
