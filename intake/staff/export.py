"""Submissions as plain records: the JSONL export is the stable interface for analysts."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any

from sqlalchemy import Select
from sqlalchemy.orm import Session

from store import selection, tags
from store.campaigns import export_maps
from store.models import Submission

from ..deadline import format_uk

__all__ = [
    "CSV_COLUMNS",
    "csv_safe",
    "iter_records",
    "submission_record",
    "write_csv",
    "write_jsonl",
]


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


_SUBMISSION_COLUMNS = (
    "id",
    "reference",
    "message_id",
    "sender_email",
    "sender_name",
    "reply_to",
    "subject",
    "received_at",
    "received_at_source",
    "sent_at",
    "timeliness",
    "timeliness_override_reason",
    "sent_in_time",
    "status",
    "error",
    "size",
    "sha256",
    "body_text",
    "ack_status",
)
_ATTACHMENT_COLUMNS = (
    "submission_id",
    "filename",
    "content_type",
    "detected_type",
    "size",
    "sha256",
    "parse_status",
    "error",
    "parser",
    "pages",
    "engine",
    "ocr_pages",
    "text",
)


def iter_records(
    session: Session, query: Select[Submission], *, with_text: bool = True
) -> Iterator[dict[str, Any]]:
    """Stream the records of the submissions ``query`` selects, in its (id) order.

    Two streaming queries, submissions and their attachments both in id order, are
    merged here: no ORM objects, no query per submission, bounded memory.
    """
    skip = set() if with_text else {"body_text", "text"}
    submissions, attachments = selection.export_streams(
        session,
        query,
        [name for name in _SUBMISSION_COLUMNS if name not in skip],
        [name for name in _ATTACHMENT_COLUMNS if name not in skip],
    )
    campaign, supersedes, superseded_by = export_maps(session)
    pending = next(attachments, None)
    batch: list[tuple[int, dict[str, Any]]] = []
    for row in submissions:
        own = []
        while pending is not None and pending.submission_id < row.id:
            pending = next(attachments, None)
        while pending is not None and pending.submission_id == row.id:
            own.append(pending)
            pending = next(attachments, None)
        record = submission_record(row, own)
        record["campaign"] = campaign.get(row.id)
        record["supersedes"] = supersedes.get(row.id)
        record["superseded_by"] = superseded_by.get(row.id)
        if not with_text:
            record.pop("body_text")
            for att in record["attachments"]:
                att.pop("text")
        batch.append((row.id, record))
        if len(batch) >= 500:
            yield from _with_questions(session, batch, with_text=with_text)
            batch = []
    yield from _with_questions(session, batch, with_text=with_text)


def _with_questions(
    session: Session, batch: list[tuple[int, dict[str, Any]]], *, with_text: bool
) -> Iterator[dict[str, Any]]:
    """Add organisation, respondent type and the tagged passages per question."""
    ids = [sid for sid, _ in batch]
    profiles = tags.respondents_of(session, ids)
    tagged = tags.tags_by_submission(session, ids) if with_text else {}
    for sid, record in batch:
        profile = profiles.get(sid)
        record["organisation"] = profile.organisation or None if profile else None
        record["respondent_type"] = profile.respondent_type if profile else None
        questions: dict[str, list[dict[str, Any]]] = {}
        for passage, tag in tagged.get(sid, []):
            questions.setdefault(tag.question_key, []).append(
                {
                    "text": passage.text,
                    "score": tag.score,
                    "source": tag.source,
                    "where": passage.source_name,
                }
            )
        record["questions"] = [{"key": k, "passages": v} for k, v in sorted(questions.items())]
        yield record


def submission_record(submission: Any, attachments: Sequence[Any] | None = None) -> dict[str, Any]:
    """One submission (a model or a row) as a JSON-ready dict; the keys are a stable interface."""
    attachments = submission.attachments if attachments is None else attachments
    return {
        "reference": submission.reference,
        "message_id": submission.message_id,
        "sender_email": submission.sender_email,
        "sender_name": submission.sender_name,
        "reply_to": submission.reply_to,
        "subject": submission.subject,
        "received_at": _iso(submission.received_at),
        "received_at_uk": format_uk(submission.received_at) if submission.received_at else None,
        "received_at_source": submission.received_at_source,
        "sent_at": _iso(submission.sent_at),
        "timeliness": submission.timeliness,
        "timeliness_override_reason": submission.timeliness_override_reason,
        "sent_in_time": submission.sent_in_time,
        "status": submission.status,
        "error": submission.error,
        "size": submission.size,
        "sha256": submission.sha256,
        "body_text": getattr(submission, "body_text", None),
        "attachments": [
            {
                "filename": att.filename,
                "content_type": att.content_type,
                "detected_type": att.detected_type,
                "size": att.size,
                "sha256": att.sha256,
                "parse_status": att.parse_status,
                # Only a failure's reason; what a successful reading says goes in "note".
                "error": att.error if att.parse_status != "ok" else None,
                "note": att.error if att.parse_status == "ok" else None,
                "parser": att.parser,
                "pages": att.pages,
                "engine": att.engine,
                "ocr_pages": att.ocr_pages,
                "text": getattr(att, "text", None),
            }
            for att in attachments
        ],
        "ack_status": submission.ack_status,
        # null or {"id", "role", "containment", "size", "additions"}: see intake campaigns
        "campaign": None,
        "supersedes": None,  # reference of the earlier version this one replaces
        "superseded_by": None,  # reference of the later version that replaces this one
    }


def write_jsonl(records: Iterable[dict[str, Any]], out: IO[str]) -> int:
    count = 0
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count


CSV_COLUMNS = (
    "reference",
    "received_at",
    "received_at_uk",
    "timeliness",
    "sent_in_time",
    "sender_name",
    "sender_email",
    "subject",
    "status",
    "attachments",
    "unreadable_attachments",
    "ack_status",
    "message_id",
)


def csv_safe(value: Any) -> Any:
    # A cell starting with = + - @ is a formula in a spreadsheet: neutralise it.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def write_csv(records: Iterable[dict[str, Any]], out: IO[str]) -> int:
    """A spreadsheet-friendly summary (no extracted text; use JSONL for that)."""
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for record in records:
        atts = record["attachments"]
        row = dict(record)
        row["attachments"] = "; ".join(a["filename"] for a in atts)
        row["unreadable_attachments"] = "; ".join(
            f"{a['filename']} ({a['parse_status']})" for a in atts if a["parse_status"] != "ok"
        )
        writer.writerow({col: csv_safe(row.get(col)) for col in CSV_COLUMNS})
        count += 1
    return count
