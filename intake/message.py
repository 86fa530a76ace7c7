"""Value objects passed between the mailbox, the MIME reader and the store (pure)."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

__all__ = [
    "AttachmentPart",
    "Envelope",
    "FetchedMail",
    "MailKey",
    "ReceivedAt",
    "Timeliness",
]


class Timeliness(enum.StrEnum):
    """Whether a response arrived by the deadline."""

    ON_TIME = "on_time"
    LATE = "late"


@dataclass(frozen=True, slots=True)
class MailKey:
    """Where a message was seen: a mailbox, its UIDVALIDITY and the message's UID."""

    mailbox: str
    uidvalidity: int
    uid: int


@dataclass(frozen=True, slots=True)
class FetchedMail:
    """One message exactly as the inbox gave it to us, before anything reads it."""

    raw: bytes
    fetched_at: dt.datetime
    key: MailKey | None = None
    internal_date: dt.datetime | None = None
    oversize: bool = False  # only the header was fetched: the message is over the size limit
    size: int | None = None


@dataclass(frozen=True, slots=True)
class AttachmentPart:
    """A file a respondent sent: an attachment, an inline document or a forwarded part."""

    position: int
    filename: str
    content_type: str
    data: bytes
    inline: bool = False
    nested_in: str | None = None  # subject of the forwarded message it came from


@dataclass(frozen=True, slots=True)
class ReceivedAt:
    """The instant a message reached us and which evidence it came from."""

    at: dt.datetime
    source: str  # internaldate | received_header | date_header | fetched_at


@dataclass(frozen=True)
class Envelope:
    """What the MIME reader makes of one message's headers and body."""

    message_id: str
    message_id_derived: bool
    sender_email: str
    sender_name: str
    reply_to: str
    subject: str
    sent_at: dt.datetime | None
    received_header_at: dt.datetime | None
    body_text: str
    headers: dict[str, str] = field(default_factory=dict)
    defects: tuple[str, ...] = ()
