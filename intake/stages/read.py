"""The ``read`` stage: one stored message -> headers, body, on time or late, file texts.

Reads the stored raw bytes (never the mailbox), classifies the arrival against the
deadline and extracts each attachment's text through the isolated extraction
workers; the reading replaces the submission's parsed view in the caller's
transaction. A delivery report about one of our acknowledgements is filed with it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from parsers import ExtractJob, ExtractResult, ParseStatus
from parsers.pdflayout import page_ranges
from parsers.result import MB
from store import repo, work
from store.models import AckStatus, Submission, SubmissionKind, SubmissionStatus

from ..ack import is_delivery_report, own_mail_reason
from ..deadline import classify, pick_received_at, sent_in_time
from ..mail.message import AttachmentPart, Envelope
from ..mail.mime import PART_LIMIT_DEFECT, decoded_leaves, read_message
from ..mail.outbox import find_bounced_ack, own_addresses, queue_ack, quoted_ack_ids

if TYPE_CHECKING:
    from ..context import AppContext

__all__ = ["on_failure", "prepare", "run", "run_many"]

log = logging.getLogger(__name__)


def within_budget(result: ExtractResult, budget: int, limit_mb: float) -> tuple[ExtractResult, int]:
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


# What one batch's prepare may hold in raw bytes (and so in parts) before the rest of
# the batch is left to run() one at a time: memory stays bounded whatever the batch.
_PREPARE_BYTES = 32 * MB


@dataclass
class _Parsed:
    """A message parsed (once) and its attachments' results, ready for run()."""

    sha256: str
    raw: bytes
    envelope: Envelope
    parts: list[AttachmentPart]
    results: dict[int, ExtractResult] = field(default_factory=dict)


def prepare(app: AppContext, ids: Sequence[int]) -> None:
    """Parse a claimed batch and extract all its attachments at once, on every core.

    The messages are loaded ten at a time, the ten largest first and the ten
    smallest last, and each is parsed only when a worker is ready for more, so the
    workers read one message's files while the next message is parsed, and finish
    the batch on small files together. The results wait in
    ``app.stage_cache`` for :func:`run`; whatever is not prepared (past the byte cap)
    ``run`` does itself. Raises like ``run``: the runner then runs the batch one
    submission at a time.
    """
    parsed: dict[int, _Parsed] = {}
    with app.sessions() as session:
        order = work.largest_first(session, ids)

    def jobs() -> Iterator[ExtractJob]:
        held = 0
        # The batch's raw bytes, in slices, so that no more than the cap is ever loaded.
        for start in range(0, len(order), 10):
            if held >= _PREPARE_BYTES:
                return
            with app.sessions() as session:
                rows = work.raws_for_reading(session, order[start : start + 10])
            for submission_id, sha256, status, header_only, raw in rows:
                if status == SubmissionStatus.PURGED:
                    continue
                held += len(raw)
                envelope, parts = _parse(app, raw, sha256)
                item = _Parsed(sha256, raw, envelope, [] if header_only else parts)
                parsed[submission_id] = item
                yield from _jobs(app, item.parts, item.results, key=submission_id)

    stream = jobs()
    first = next(stream, None)  # body-only mail never starts the extraction workers
    if first is not None:
        for job, result in app.pool.extract_many(itertools.chain([first], stream)):
            key: tuple[int, int] = job.key  # type: ignore[assignment]
            parsed[key[0]].results[key[1]] = result
    for submission_id, item in parsed.items():
        app.stage_cache[("read", submission_id)] = item


def run(app: AppContext, session: Session, submission_id: int) -> None:
    """Read one submission from its stored bytes and save the reading (no commit)."""
    run_many(app, session, [submission_id])


def run_many(app: AppContext, session: Session, ids: Sequence[int]) -> None:
    """Read a claimed batch from the stored bytes and save the readings (no commit).

    The readings are saved a few statements at a time (and at the latest every
    ``_PREPARE_BYTES`` of text, so memory stays bounded); a message that is our own
    mail or a delivery report about an acknowledgement is then filed as such.
    """
    rows = work.rows_for_reading(session, ids)
    readings: list[_Reading] = []
    held = 0
    for submission_id in sorted(ids):
        row = rows.get(submission_id)
        if row is None or row.status == SubmissionStatus.PURGED:
            continue  # purged under the retention policy: nothing left to read
        reading, text_size = _read(app, session, row)
        readings.append(reading)
        held += text_size
        if held >= _PREPARE_BYTES:
            _save(app, session, readings)
            readings, held = [], 0
    _save(app, session, readings)


@dataclass(frozen=True)
class _Reading(repo.Reading):
    """A reading, with what must be filed after it is saved."""

    own: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    quoted: list[str] = field(default_factory=list)


def _read(app: AppContext, session: Session, row: work.ReadingRow) -> tuple[_Reading, int]:
    """Read one stored message: the reading to save, and the size of its text."""
    cached = app.stage_cache.pop(("read", row.id), None)
    if isinstance(cached, _Parsed) and cached.sha256 == row.sha256:
        raw, envelope, parts, results = cached.raw, cached.envelope, cached.parts, cached.results
    else:
        raw = repo.load_raw(session, row.id)
        envelope, parts = _parse(app, raw, row.sha256)
        parts = [] if row.header_only else parts
        results = _extract(app, parts)
    limits = app.settings.limits
    values = _envelope_values(app, envelope, row.internal_date, row.fetched_at)
    # Never ourselves: our own mail is kept but is not a response.
    own = own_mail_reason(
        envelope.headers,
        envelope.sender_email,
        envelope.reply_to,
        own_addresses(app.settings),
        envelope.message_id,
    )
    if own is not None:
        values["kind"] = SubmissionKind.OWN_MAIL
    elif row.kind == SubmissionKind.OWN_MAIL:
        values["kind"] = SubmissionKind.RESPONSE
    if PART_LIMIT_DEFECT in envelope.defects:
        values["error"] = (
            "Only part of this message was read: it nests deeper than "
            f"{limits.max_nesting_depth} levels or has more than {limits.max_parts} parts "
            "([limits] max_nesting_depth, max_parts)."
        )
    if row.header_only:
        values["status"] = SubmissionStatus.TOO_LARGE
        values["error"] = (
            f"The message is {row.size / MB:.1f} MB, over the "
            f"{limits.max_message_mb:g} MB limit; only its header was stored. "
            "Ask the sender to send smaller files in separate emails."
        )
        parts = []
    quoted: list[str] = []
    if is_delivery_report(envelope.headers, envelope.sender_email):
        quoted = quoted_ack_ids([raw, *decoded_leaves(raw)])
    records = _records(app, parts, results, values)
    reading = _Reading(
        row.id,
        values,
        records,
        [dataclasses.asdict(p) for p in envelope.skipped],
        own=own,
        headers=envelope.headers,
        quoted=quoted,
    )
    size = len(envelope.body_text) + sum(len(str(r["text"] or "")) for r in records)
    return reading, size


def _save(app: AppContext, session: Session, readings: list[_Reading]) -> None:
    repo.save_readings(session, readings)
    for reading in readings:
        if reading.own is None and not reading.quoted:
            continue
        saved = session.get(Submission, reading.submission_id, populate_existing=True)
        if saved is None:
            continue
        if reading.own is not None and saved.ack_status in (AckStatus.NONE, AckStatus.OFF):
            # Recorded as suppressed even when acknowledgements are off: never a response.
            saved.ack_status = AckStatus.NONE
            queue_ack(session, saved, app.settings, app.now(), reading.headers)
        if reading.quoted:
            _attach_bounce(session, saved, reading.quoted)


def _parse(app: AppContext, raw: bytes, sha256: str) -> tuple[Envelope, list[AttachmentPart]]:
    limits = app.settings.limits
    return read_message(raw, sha256, max_depth=limits.max_nesting_depth, max_parts=limits.max_parts)


def on_failure(app: AppContext, session: Session, submission_id: int, error: str) -> None:
    """Show the failure on the submission itself (status ``failed`` with the reason)."""
    repo.save_reading(
        session,
        submission_id,
        {
            "status": SubmissionStatus.FAILED,
            "error": f"the message could not be read: {error}",
            "parsed_at": app.now(),
        },
        [],
    )


def _envelope_values(
    app: AppContext, envelope: Envelope, internal_date: dt.datetime | None, fetched_at: dt.datetime
) -> dict[str, object]:
    received = pick_received_at(
        internal_date, envelope.received_header_at, envelope.sent_at, fetched_at
    )
    timeliness = classify(received.at, app.cutoff)
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
        "sent_in_time": sent_in_time(timeliness, envelope.sent_at, app.cutoff),
        "body_text": envelope.body_text,
        "headers_json": json.dumps(envelope.headers, ensure_ascii=False),
        "defects": ", ".join(envelope.defects) or None,
        "parsed_at": app.now(),
    }


def _jobs(
    app: AppContext, parts: list[AttachmentPart], results: dict[int, ExtractResult], key: int
) -> list[ExtractJob]:
    """Extraction jobs for ``parts``; those past the attachment limit get a result now."""
    limit = app.settings.limits.max_attachments
    jobs: list[ExtractJob] = []
    for part in parts:
        if part.position > limit:
            results[part.position] = ExtractResult(
                status=ParseStatus.TOO_LARGE,
                message=f"Not read: the message has more than {limit} attachments.",
            )
            continue
        jobs.append(
            ExtractJob(
                key=(key, part.position),
                data=part.data,
                filename=part.filename,
                declared_type=part.content_type,
            )
        )
    return jobs


def _extract(app: AppContext, parts: list[AttachmentPart]) -> dict[int, ExtractResult]:
    results: dict[int, ExtractResult] = {}
    jobs = _jobs(app, parts, results, key=0)
    if jobs:
        for job, result in app.pool.extract_many(jobs):
            results[job.key[1]] = result  # type: ignore[index]
    return results


def _records(
    app: AppContext,
    parts: list[AttachmentPart],
    results: dict[int, ExtractResult],
    values: dict[str, object],
) -> list[dict[str, object]]:
    limits = app.settings.limits
    budget = int(limits.max_text_mb * MB) - len(str(values.get("body_text") or ""))
    records: list[dict[str, object]] = []
    for part in parts:
        result = results.get(part.position) or ExtractResult(
            status=ParseStatus.FAILED, message="No result came back from the extraction worker."
        )
        result, budget = within_budget(result, budget, limits.max_text_mb)
        records.append(
            {
                "position": part.position,
                "filename": part.filename,
                "content_type": part.content_type,
                "detected_type": result.detected_type,
                "size": len(part.data),
                "sha256": hashlib.sha256(part.data).hexdigest(),
                "nested_in": part.nested_in,
                "parse_status": str(result.status),
                "error": " ".join([result.message, *(f"({w})" for w in result.warnings)]) or None,
                "text": result.text,
                "parser": " ".join(filter(None, [result.parser, result.parser_version])) or None,
                "pages": result.pages,
                "engine": result.engine or None,
                "ocr_pages": page_ranges(result.ocr_pages) or None,
                "parsed_at": app.now(),
            }
        )
    return records


def _attach_bounce(session: Session, submission: Submission, quoted: list[str]) -> None:
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
