"""The database schema as SQLAlchemy 2 typed models.

The raw message is the record; every parsed column is a cache that can be rebuilt
from ``RawMessage.data``. Unique constraints, not Python checks, make a second
sighting of a message a no-op.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import NAMING, Base, UTCDateTime, partial_index

__all__ = [
    "NAMING",
    "Ack",
    "AckStatus",
    "Attachment",
    "AuditEvent",
    "Base",
    "DigestRun",
    "Lease",
    "OAuthToken",
    "PollRun",
    "RawMessage",
    "Sighting",
    "Submission",
    "SubmissionKind",
    "SubmissionStatus",
    "UTCDateTime",
]


class SubmissionStatus(enum.StrEnum):
    """Where a submission is in the pipeline."""

    RECEIVED = "received"  # raw bytes stored, nothing read yet
    PARSED = "parsed"  # headers, body and every attachment have a result
    FAILED = "failed"  # reading the message itself failed; raw bytes kept for a rerun
    TOO_LARGE = "too_large"  # over the message size limit: only its header was stored
    PURGED = "purged"  # raw mail, files and texts deleted under the retention policy


class SubmissionKind(enum.StrEnum):
    """Whether a stored message is a response or machinery about our own mail."""

    RESPONSE = "response"
    ACK_BOUNCE = "ack_bounce"
    OWN_MAIL = "own_mail"  # from one of our own addresses, or a copy of our own mail
    AUTO_REPLY = "auto_reply"  # an out-of-office or other automatic reply
    NOT_RESPONSE = "not_response"  # set by an admin: spam, a query, a misdirected email


class AckStatus(enum.StrEnum):
    """What happened to the acknowledgement of a submission."""

    NONE = "none"  # not decided yet
    OFF = "off"  # acknowledgements are switched off or --no-ack was used
    PENDING = "pending"
    SENDING = "sending"  # handed to SMTP; the commit of the outcome has not happened yet
    SENT = "sent"
    SUPPRESSED = "suppressed"
    FAILED = "failed"
    BOUNCED = "ack_bounced"
    CANCELLED = "cancelled"  # never sent: the response was purged or erased first


def _enum(length: int = 20) -> String:
    # Plain strings, not native enums: a new status never needs an ALTER TYPE.
    return String(length)


class Submission(Base):
    """One emailed response: the parsed view of one stored raw message."""

    __tablename__ = "submissions"
    __table_args__ = (
        UniqueConstraint("message_id", "sha256", name="uq_submissions_message_id_sha256"),
        Index("ix_submissions_received_at", "received_at"),
        Index("ix_submissions_status", "status"),
        Index("ix_submissions_sender_email", "sender_email"),
        Index("ix_submissions_kind", "kind"),
        Index("ix_submissions_fetched_at", "fetched_at"),
        {"sqlite_autoincrement": True},  # ids, and so references, are never reused
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str | None] = mapped_column(String(32), unique=True)
    message_id: Mapped[str] = mapped_column(String(998))
    message_id_derived: Mapped[bool] = mapped_column(Boolean, default=False)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(500))
    fetched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    internal_date: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(_enum(), default=SubmissionStatus.RECEIVED)
    header_only: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)

    sender_email: Mapped[str | None] = mapped_column(String(320))
    sender_name: Mapped[str | None] = mapped_column(String(200))
    reply_to: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    received_at_source: Mapped[str | None] = mapped_column(String(20))
    timeliness: Mapped[str | None] = mapped_column(_enum())
    sent_in_time: Mapped[bool] = mapped_column(Boolean, default=False)
    timeliness_override_reason: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)
    headers_json: Mapped[str | None] = mapped_column(Text)
    defects: Mapped[str | None] = mapped_column(Text)
    parsed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    ack_status: Mapped[str] = mapped_column(_enum(), default=AckStatus.NONE)
    # "response", or "ack_bounce": a delivery report about one of our acknowledgements,
    # kept (nothing is thrown away) but not counted as a response.
    kind: Mapped[str] = mapped_column(_enum(), default=SubmissionKind.RESPONSE)
    bounced_ack_id: Mapped[int | None] = mapped_column(ForeignKey("acks.id", use_alter=True))

    raw: Mapped[RawMessage | None] = relationship(
        back_populates="submission", cascade="all, delete-orphan", lazy="raise"
    )
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="submission",
        cascade="all, delete-orphan",
        order_by="Attachment.position",
        lazy="selectin",
    )
    sightings: Mapped[list[Sighting]] = relationship(
        back_populates="submission", cascade="all, delete-orphan", lazy="raise"
    )


class RawMessage(Base):
    """The message exactly as the server gave it, kept apart so lists never load it."""

    __tablename__ = "raw_messages"

    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[bytes] = mapped_column(LargeBinary)
    submission: Mapped[Submission] = relationship(back_populates="raw")


class Sighting(Base):
    """Each place a message was seen: (mailbox, UIDVALIDITY, UID) is seen only once."""

    __tablename__ = "sightings"
    __table_args__ = (
        UniqueConstraint("mailbox", "uidvalidity", "uid", name="uq_sightings_mailbox_uid"),
        # Finds the few sightings the server has not been told about without a scan.
        # Partial, and written "flagged IS false", so that SQLite uses it too.
        partial_index(
            "ix_sightings_unflagged",
            "mailbox",
            "uidvalidity",
            "uid",
            where={"sqlite": "flagged IS 0", "postgresql": "flagged IS false"},
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(500))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), index=True
    )
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    submission: Mapped[Submission] = relationship(back_populates="sightings")


class Attachment(Base):
    """One file of a submission and what extraction made of it."""

    __tablename__ = "attachments"
    __table_args__ = (
        UniqueConstraint("submission_id", "position", name="uq_attachments_submission_position"),
        Index("ix_attachments_parse_status", "parse_status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(500))
    content_type: Mapped[str] = mapped_column(String(200))
    detected_type: Mapped[str | None] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    nested_in: Mapped[str | None] = mapped_column(String(500))
    parse_status: Mapped[str] = mapped_column(_enum(), default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    parser: Mapped[str | None] = mapped_column(String(100))
    pages: Mapped[int | None] = mapped_column(Integer)
    # Which engine(s) gave a PDF its text (pdfium, pdfminer, tesseract, joined by "+"),
    # and the pages read by OCR ("1, 3-5").
    engine: Mapped[str | None] = mapped_column(String(40))
    ocr_pages: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    parsed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    submission: Mapped[Submission] = relationship(back_populates="attachments")


class Ack(Base):
    """One outgoing acknowledgement: the outbox row, written before any mail is sent.

    ``sequence`` 0 is the acknowledgement; an explicit ``intake resend-ack`` adds 1, 2, ...
    The unique key makes a second automatic acknowledgement impossible.
    """

    __tablename__ = "acks"
    __table_args__ = (
        UniqueConstraint("submission_id", "sequence", name="uq_acks_submission_sequence"),
        Index("ix_acks_status_next", "status", "next_attempt_at"),
        Index("ix_acks_to_created", "to_addr", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(_enum(), default=AckStatus.PENDING)
    reason: Mapped[str | None] = mapped_column(Text)
    to_addr: Mapped[str | None] = mapped_column(String(320))
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    requested_by: Mapped[str | None] = mapped_column(Text)
    # Who is sending it, until when: a `sending` row is taken again only after this
    # (or when its holder, a process on this host, is gone), with the same Message-ID.
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    submission: Mapped[Submission] = relationship(foreign_keys=[submission_id])


class PollRun(Base):
    """One poll cycle: when it ran and how it ended (read by ``intake status``)."""

    __tablename__ = "poll_runs"
    __table_args__ = (Index("ix_poll_runs_started_at", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(500))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ok: Mapped[bool | None] = mapped_column(Boolean)
    stored: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class DigestRun(Base):
    """One daily digest: the period it covers and whether it went out.

    ``day`` (a UK date) is unique for the scheduled digest, so a restart at send
    time cannot send a second one for the same day.
    """

    __tablename__ = "digests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[dt.date | None] = mapped_column(Date, unique=True)  # None for a manual --send
    period_start: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    period_end: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(_enum(), default="sending")
    message_id: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Lease(Base):
    """A named lease held by one process until it expires: one poller per inbox.

    Taken and renewed with a single conditional UPDATE, which is atomic on SQLite
    and PostgreSQL alike; a crashed holder's lease lapses by itself.
    """

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(500), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class AuditEvent(Base):
    """A change a person made or asked for: overrides, resends, purges, reparses."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    action: Mapped[str] = mapped_column(String(50))
    reference: Mapped[str | None] = mapped_column(String(32), index=True)
    detail: Mapped[str] = mapped_column(Text, default="")


class OAuthToken(Base):
    """A delegated OAuth2 sign-in: the latest refresh token, encrypted (Fernet).

    One row per provider, app (client_id) and mailbox; replaced whenever the token
    endpoint hands out a new refresh token (Microsoft rotates them on every use).
    """

    __tablename__ = "oauth_tokens"
    __table_args__ = (
        UniqueConstraint(
            "provider", "client_id", "account", name="uq_oauth_tokens_provider_client_account"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    client_id: Mapped[str] = mapped_column(String(255))
    account: Mapped[str] = mapped_column(String(320))
    refresh_token_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
