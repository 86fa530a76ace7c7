"""Submissions as plain records: the JSONL export is the stable interface for analysts."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable
from typing import IO, Any

from store.models import Submission

from .deadline import format_uk

__all__ = ["CSV_COLUMNS", "csv_safe", "csv_text", "submission_record", "write_csv", "write_jsonl"]


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


def submission_record(submission: Submission) -> dict[str, Any]:
    """One submission as a JSON-ready dict (keys are a stable interface)."""
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
        "body_text": submission.body_text,
        "attachments": [
            {
                "filename": att.filename,
                "content_type": att.content_type,
                "detected_type": att.detected_type,
                "size": att.size,
                "sha256": att.sha256,
                "parse_status": att.parse_status,
                "error": att.error,
                "parser": att.parser,
                "pages": att.pages,
                "text": att.text,
            }
            for att in submission.attachments
        ],
        "ack_status": submission.ack_status,
    }


def write_jsonl(submissions: Iterable[Submission], out: IO[str]) -> int:
    count = 0
    for submission in submissions:
        out.write(json.dumps(submission_record(submission), ensure_ascii=False) + "\n")
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


def write_csv(submissions: Iterable[Submission], out: IO[str]) -> int:
    """A spreadsheet-friendly summary (no extracted text; use JSONL for that)."""
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for submission in submissions:
        record = submission_record(submission)
        atts = record["attachments"]
        record["attachments"] = "; ".join(a["filename"] for a in atts)
        record["unreadable_attachments"] = "; ".join(
            f"{a['filename']} ({a['parse_status']})" for a in atts if a["parse_status"] != "ok"
        )
        writer.writerow({col: csv_safe(record.get(col)) for col in CSV_COLUMNS})
        count += 1
    return count


def csv_text(submissions: Iterable[Submission]) -> str:
    buffer = io.StringIO()
    write_csv(submissions, buffer)
    return buffer.getvalue()
