"""Fill a database with many stored-and-read submissions by bulk inserts.

What a consultation's database looks like after a flood: every submission parsed,
its sighting flagged, most with one attachment holding extracted text, each with a
sent acknowledgement. Arrivals spread over 60 days and bunch towards the end. The
raw message kept per submission is a short stand-in (the figures that use this
database never read it), and each attachment's text is about a page (2 KB).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Sequence

from sqlalchemy import Engine, text

from store.models import Ack, Attachment, RawMessage, Sighting, Submission

__all__ = ["fill_submissions"]

_CHUNK = 5000
_TEXT = ("We support the plan for the high street but ask the council to reconsider the "
         "parking changes and to keep the library open in the evenings. ")


def _rows(number: int, uid: int, mailbox: str, validity: int, end: dt.datetime,
          rng: random.Random, prefix: str) -> tuple[dict, dict, dict, dict | None, dict]:
    days = 60 * (1 - rng.random()) ** 2  # arrivals bunch towards the deadline
    fetched = end - dt.timedelta(days=days)
    received = fetched - dt.timedelta(seconds=rng.randint(5, 600))
    sender = f"respondent{number}@example.net"
    subject = f"Response to the consultation ({number})"
    timeliness = "late" if received > end - dt.timedelta(hours=12) else "on_time"
    sub = {
        "id": number, "reference": f"{prefix}-{number:05d}",
        "message_id": f"<bench-{number}@example.net>", "message_id_derived": False,
        "sha256": f"{number:064x}", "size": rng.randint(20_000, 2_000_000),
        "source": mailbox, "fetched_at": fetched, "internal_date": received,
        "status": "parsed", "header_only": False, "error": None,
        "sender_email": sender, "sender_name": "Ann Smith", "reply_to": None,
        "subject": subject, "sent_at": received, "received_at": received,
        "received_at_source": "internaldate", "timeliness": timeliness,
        "sent_in_time": False, "timeliness_override_reason": None,
        "body_text": _TEXT * 6,
        "headers_json": json.dumps({"From": sender, "To": "consultation@example.org",
                                    "Subject": subject, "Date": received.isoformat(),
                                    "Message-ID": f"<bench-{number}@example.net>"}),
        "defects": None, "parsed_at": fetched, "ack_status": "sent", "kind": "response",
        "bounced_ack_id": None,
    }
    raw = {"submission_id": number,
           "data": f"From: {sender}\nSubject: {subject}\n\n(stand-in)\n".encode()}
    sighting = {"mailbox": mailbox, "uidvalidity": validity, "uid": uid,
                "submission_id": number, "seen_at": fetched, "flagged": True}
    attachment = None
    roll = rng.random()
    if roll < 0.9:
        status = "ok" if roll < 0.87 else rng.choice(["needs_ocr", "corrupt", "timeout"])
        pages = rng.randint(1, 10)
        attachment = {
            "submission_id": number, "position": 1, "filename": f"response-{number}.pdf",
            "content_type": "application/pdf", "detected_type": "application/pdf",
            "size": sub["size"], "sha256": f"{number:064x}", "nested_in": None,
            "parse_status": status, "error": None if status == "ok" else "could not be read",
            "text": _TEXT * 14 if status == "ok" else "",  # about a page: 2 KB
            "parser": "pdfminer.six", "pages": pages, "attempts": 1, "parsed_at": fetched,
        }
    ack = {"submission_id": number, "sequence": 0, "status": "sent", "reason": None,
           "to_addr": sender, "message_id": f"<ack-{number}@example.org>", "attempts": 1,
           "next_attempt_at": None, "created_at": fetched, "sent_at": fetched,
           "requested_by": None}
    return sub, raw, sighting, attachment, ack


def fill_submissions(engine: Engine, *, first: int, uids: Sequence[int], mailbox: str,
                     validity: int, end: dt.datetime, prefix: str = "KIL") -> None:
    """Insert one parsed submission per UID, numbered from ``first``."""
    rng = random.Random(first)  # noqa: S311 - test data
    tables = [Submission.__table__, RawMessage.__table__, Sighting.__table__,
              Attachment.__table__, Ack.__table__]
    for start in range(0, len(uids), _CHUNK):
        batches: list[list[dict]] = [[] for _ in tables]
        for offset, uid in enumerate(uids[start:start + _CHUNK]):
            for batch, row in zip(batches, _rows(first + start + offset, uid, mailbox, validity,
                                                 end, rng, prefix), strict=True):
                if row is not None:
                    batch.append(row)
        with engine.begin() as conn:
            for table, batch in zip(tables, batches, strict=True):
                if batch:
                    conn.execute(table.insert(), batch)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            for table, column in (("submissions", "id"), ("sightings", "id"),
                                  ("attachments", "id"), ("acks", "id")):
                # Only the fixed names above are interpolated.
                sequence = f"pg_get_serial_sequence('{table}', '{column}')"
                highest = f"SELECT COALESCE(MAX({column}), 1) FROM {table}"  # noqa: S608
                query = f"SELECT setval({sequence}, ({highest}))"
                conn.execute(text(query))
        with engine.begin() as conn:
            # autovacuum would have analysed the tables; SQLite has no such thing.
            conn.execute(text("ANALYZE"))
