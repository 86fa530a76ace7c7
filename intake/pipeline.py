"""The steps one message goes through after its raw bytes are safely stored.

1. :func:`store_fetched` stores the bytes (and commits) before anything reads them.
2. :func:`read_pending` reads every stored-but-unread submission: headers, body,
   on time or late, and the text of each attachment through the isolated
   extraction workers, then saves the result in one transaction per submission.

A failure while reading one message is recorded on that message (status
``failed`` with the error) and the next goes on: this module holds the one
catch-all of the program.
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import itertools
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from parsers import ExtractionPool, ExtractJob, ExtractResult, ParseStatus
from parsers.pdflayout import page_ranges
from store import repo
from store.models import AckStatus, Submission, SubmissionKind, SubmissionStatus

from .ack import is_delivery_report
from .config import Settings
from .deadline import classify, deadline_instant, pick_received_at, sent_in_time
from .mailer import Mailer
from .message import AttachmentPart, Envelope, FetchedMail
from .mime import PART_LIMIT_DEFECT, decoded_leaves, message_id_of, read_message
from .outbox import SendReport, find_bounced_ack, queue_ack, quoted_ack_ids, send_due

__all__ = ["Pipeline", "ReadCounts"]

log = logging.getLogger(__name__)


@dataclass
class ReadCounts:
    """What one pass of reading did."""

    read: int = 0
    failed: int = 0
    attachments: dict[str, int] = field(default_factory=dict)


def _within_budget(
    result: ExtractResult, budget: int, limit_mb: float
) -> tuple[ExtractResult, int]:
    """Cut text that would take the submission over ``[limits] max_text_mb``."""
    if len(result.text) <= budget:
        return result, budget - len(result.text)
    kept = max(budget, 0)
    note = (
        f"Text cut after {kept:,} characters: the submission's text is over the "
        f"{limit_mb:g} MB limit ([limits] max_text_mb)."
    )
    status = result.status if kept else ParseStatus.TOO_LARGE
    message = f"{result.message} {note}".strip()
    return replace(result, text=result.text[:kept], status=status, message=message), 0


@dataclass
class _Reading:
    submission_id: int
    values: dict[str, object]
    parts: list[AttachmentPart]
    headers: dict[str, str] = field(default_factory=dict)
    quoted_ack_ids: list[str] = field(default_factory=list)
    results: dict[int, ExtractResult] = field(default_factory=dict)
    files: dict[int, tuple[int, str]] = field(default_factory=dict)  # size, SHA-256


class Pipeline:
    """Stores and reads messages; built once per command or worker with its parts."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        pool: Callable[[], ExtractionPool],
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        mailer: Mailer | None = None,
        *,
        acks: bool = True,
    ) -> None:
        self.settings = settings
        self.mailer = mailer
        self.acks = acks and mailer is not None and settings.acks_on
        self.sessions = sessions
        self._pool_factory = pool
        self._pool: ExtractionPool | None = None
        self.now = now
        consultation = settings.consultation
        self.cutoff = deadline_instant(
            consultation.deadline, consultation.zone, consultation.grace_minutes
        )

    @property
    def pool(self) -> ExtractionPool:
        """The extraction workers, started on first use (an idle poll starts none)."""
        if self._pool is None:
            self._pool = self._pool_factory()
        return self._pool

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- step 1 ----------------------------------------------------------------------

    def store_fetched(self, mail: FetchedMail, source: str) -> repo.StoredRaw:
        """Store one fetched message whole and commit; a second sighting is a no-op."""
        return self.store_fetched_many([mail], source)[0]

    def store_fetched_many(self, mails: Sequence[FetchedMail], source: str) -> list[repo.StoredRaw]:
        """Store fetched messages whole, in one transaction, and commit.

        Nothing has read them yet and the server is told only after this returns, so
        a crash before the commit loses nothing: the messages are fetched again.
        """
        items = []
        for mail in mails:
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
            return repo.store_raws(session, items, self.settings.consultation.reference_prefix)

    # --- step 2 ----------------------------------------------------------------------

    def read_pending(
        self,
        progress: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> ReadCounts:
        """Read every submission that is stored but not yet read."""
        with self.sessions() as session:
            ids = repo.pending_ids(session)
        return self.read(ids, progress, should_stop)

    def read(
        self,
        ids: Iterable[int],
        progress: Callable[[int], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> ReadCounts:
        """(Re)read the given submissions from their stored raw bytes.

        Messages are parsed as the extraction workers ask for more work, so parsing
        one message overlaps with extracting the attachments of the ones before it;
        each submission is saved as soon as its last attachment is back. A stop request
        is honoured between messages; unread ones stay pending.
        """
        counts = ReadCounts()
        # Submissions read, in order, with the number of attachments still out; each is
        # saved once it and every one before it are complete, so acknowledgements keep
        # the order messages arrived in. Attachment bytes are let go as soon as their
        # job is made, so waiting readings stay small.
        backlog: collections.OrderedDict[int, list[Any]] = collections.OrderedDict()

        def flush() -> None:
            while backlog:
                submission_id, (reading, left) = next(iter(backlog.items()))
                if left:
                    return
                del backlog[submission_id]
                if reading is not None:
                    self._save(reading, counts)
                if progress is not None:
                    progress(1)

        def jobs() -> Iterator[ExtractJob]:
            for submission_id in ids:
                if should_stop():
                    return
                reading = self._read_one(submission_id, counts)
                own = self._jobs(reading) if reading is not None else []
                backlog[submission_id] = [reading, len(own)]
                if not own:
                    flush()
                yield from own

        queue = jobs()
        first = next(queue, None)
        if first is not None:  # else nothing to extract: the workers are not started
            for job, result in self.pool.extract_many(itertools.chain([first], queue)):
                key: tuple[int, int] = job.key  # type: ignore[assignment]
                entry = backlog[key[0]]
                entry[0].results[key[1]] = result
                entry[1] -= 1
                flush()
        flush()
        return counts

    def _read_one(self, submission_id: int, counts: ReadCounts) -> _Reading | None:
        with self.sessions() as session:
            submission = session.get(Submission, submission_id)
            if submission is None or submission.status == SubmissionStatus.PURGED:
                return None  # purged under the retention policy: nothing left to read
            raw = repo.load_raw(session, submission_id)
            header_only, internal_date = submission.header_only, submission.internal_date
            fetched_at, size, sha256 = submission.fetched_at, submission.size, submission.sha256
        try:
            limits = self.settings.limits
            envelope, parts = read_message(
                raw, sha256, max_depth=limits.max_nesting_depth, max_parts=limits.max_parts
            )
        except Exception as exc:  # noqa: BLE001 - the one catch-all: record it, go on
            log.exception("reading failed", extra={"submission": submission_id})
            self._fail(submission_id, f"the message could not be read: {exc!r}")
            counts.failed += 1
            return None
        values = self._envelope_values(envelope, internal_date, fetched_at)
        if PART_LIMIT_DEFECT in envelope.defects:
            values["error"] = (
                "Only part of this message was read: it nests deeper than "
                f"{limits.max_nesting_depth} levels or has more than {limits.max_parts} parts "
                "([limits] max_nesting_depth, max_parts)."
            )
        if header_only:
            limit = self.settings.limits.max_message_mb
            values["status"] = SubmissionStatus.TOO_LARGE
            values["error"] = (
                f"The message is {size / 1e6:.1f} MB, over the {limit:g} MB limit; only its "
                "header was stored. Ask the sender to send smaller files in separate emails."
            )
            parts = []
        quoted: list[str] = []
        if is_delivery_report(envelope.headers, envelope.sender_email):
            quoted = quoted_ack_ids([raw, *decoded_leaves(raw)])
        return _Reading(submission_id, values, parts, envelope.headers, quoted)

    def _envelope_values(
        self, envelope: Envelope, internal_date: dt.datetime | None, fetched_at: dt.datetime
    ) -> dict[str, object]:
        received = pick_received_at(
            internal_date, envelope.received_header_at, envelope.sent_at, fetched_at
        )
        timeliness = classify(received.at, self.cutoff)
        return {
            "status": SubmissionStatus.PARSED,
            "error": None,
            "sender_email": envelope.sender_email or None,
            "sender_name": envelope.sender_name or None,
            "reply_to": envelope.reply_to or None,
            "subject": envelope.subject,
            "sent_at": envelope.sent_at,
            "received_at": received.at,
            "received_at_source": received.source,
            "timeliness": timeliness,
            "sent_in_time": sent_in_time(timeliness, envelope.sent_at, self.cutoff),
            "body_text": envelope.body_text,
            "headers_json": json.dumps(envelope.headers, ensure_ascii=False),
            "defects": ", ".join(envelope.defects) or None,
            "parsed_at": self.now(),
        }

    def _jobs(self, reading: _Reading) -> list[ExtractJob]:
        """Extraction jobs for a message's attachments (those over the limit get a result)."""
        limit = self.settings.limits.max_attachments
        jobs: list[ExtractJob] = []
        for part in reading.parts:
            if part.position > limit:
                reading.results[part.position] = ExtractResult(
                    status=ParseStatus.TOO_LARGE,
                    message=f"Not read: the message has more than {limit} attachments.",
                )
                continue
            jobs.append(
                ExtractJob(
                    key=(reading.submission_id, part.position),
                    data=part.data,
                    filename=part.filename,
                    declared_type=part.content_type,
                )
            )
        reading.files = {
            part.position: (len(part.data), hashlib.sha256(part.data).hexdigest())
            for part in reading.parts
        }
        reading.parts = [replace(part, data=b"") for part in reading.parts]
        return jobs

    def _save(self, reading: _Reading, counts: ReadCounts) -> None:
        records = []
        budget = int(self.settings.limits.max_text_mb * 1_000_000) - len(
            str(reading.values.get("body_text") or "")
        )
        for part in reading.parts:
            result = reading.results.get(part.position) or ExtractResult(
                status=ParseStatus.FAILED, message="No result came back from the extraction worker."
            )
            result, budget = _within_budget(result, budget, self.settings.limits.max_text_mb)
            counts.attachments[result.status] = counts.attachments.get(result.status, 0) + 1
            records.append(
                {
                    "position": part.position,
                    "filename": part.filename,
                    "content_type": part.content_type,
                    "detected_type": result.detected_type,
                    "size": reading.files[part.position][0],
                    "sha256": reading.files[part.position][1],
                    "nested_in": part.nested_in,
                    "parse_status": str(result.status),
                    "error": " ".join([result.message, *(f"({w})" for w in result.warnings)])
                    or None,
                    "text": result.text,
                    "parser": " ".join(filter(None, [result.parser, result.parser_version]))
                    or None,
                    "pages": result.pages,
                    "engine": result.engine or None,
                    "ocr_pages": page_ranges(result.ocr_pages) or None,
                    "parsed_at": self.now(),
                }
            )
        with self.sessions() as session:
            submission = repo.save_reading(session, reading.submission_id, reading.values, records)
            if reading.quoted_ack_ids:
                self._attach_bounce(session, submission, reading.quoted_ack_ids)
            queue_ack(
                session, submission, self.settings, self.now(), reading.headers, enabled=self.acks
            )
            session.commit()
        counts.read += 1

    def _attach_bounce(self, session: Session, submission: Submission, quoted: list[str]) -> None:
        """A report about one of our acknowledgements is filed with it, not as a response."""
        ack = find_bounced_ack(session, quoted)
        if ack is None:
            return
        submission.kind = SubmissionKind.ACK_BOUNCE
        submission.bounced_ack_id = ack.id
        ack.status = AckStatus.BOUNCED
        ack.reason = f"bounced: see {submission.reference}"
        original = session.get(Submission, ack.submission_id)
        if original is not None:
            original.ack_status = AckStatus.BOUNCED

    def send_acks(self) -> SendReport:
        """Send the acknowledgements that are due (nothing when acknowledgements are off)."""
        if self.mailer is None or not self.settings.acks_on:
            return SendReport()
        return send_due(self.sessions, self.mailer, self.settings, self.cutoff, self.now)

    def _fail(self, submission_id: int, error: str) -> None:
        with self.sessions() as session:
            repo.save_reading(
                session,
                submission_id,
                {"status": SubmissionStatus.FAILED, "error": error, "parsed_at": self.now()},
                [],
            )
            session.commit()
