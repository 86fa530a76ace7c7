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
    "SkipReason",
    "SkippedPart",
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


class SkipReason(enum.StrEnum):
    """Why a part of a message is neither body text nor an attachment.

    Every leaf of a message is body text, an attachment, or one of these: nothing is
    dropped without a recorded reason.
    """

    SIGNATURE_IMAGE = "signature image"  # small inline image shown by the HTML body
    BODY_VERSION = "another version of the body text"  # e.g. the HTML copy of a plain body
    CALENDAR = "calendar invitation"
    CONTACT_CARD = "contact card"
    DIGITAL_SIGNATURE = "digital signature"
    DELIVERY_REPORT = "delivery report"
    EMPTY = "empty part"  # e.g. a multipart without a boundary and with nothing in it
    PART_LIMIT = "not read: over the part or nesting limit"


# Skipped parts whose content may be part of the response: listed as "could not be
# read" in the acknowledgement and the digest. The rest are machinery or copies.
UNREAD_REASONS = frozenset({SkipReason.PART_LIMIT})


@dataclass(frozen=True, slots=True)
class SkippedPart:
    """A leaf part deliberately not read as body text or as an attachment, and why."""

    position: int  # the leaf's number in the message, in order, from 1
    content_type: str
    reason: SkipReason
    size: int = 0
    filename: str | None = None

    @property
    def unread(self) -> bool:
        """True when the part may hold something the respondent meant us to read."""
        return self.reason in UNREAD_REASONS


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
    skipped: tuple[SkippedPart, ...] = ()
    leaves: int = 0  # leaf parts seen: body_parts + attachments + skipped
    body_parts: int = 0  # leaf parts read as body text
