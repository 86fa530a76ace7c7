"""Acknowledgements through a database outbox: queued once, sent, retried, never twice.

Each submission gets at most one automatic acknowledgement: the outbox row
``(submission_id, sequence=0)`` is unique, and it is written in the same transaction
that saves the reading of the message. Sending is:

1. mark the row ``sending`` (attempts + 1) and commit;
2. hand the message to the SMTP server;
3. as soon as the server accepts it, mark the row ``sent`` and commit.

The only way to send a second copy is for the process to die between the server's
"250 accepted" and the commit in step 3 (a few milliseconds: nothing else happens
in between). A row found in ``sending`` is then sent again with the *same*
Message-ID, so most mail clients show the respondent one message. Everything else
(a crash before step 2, an SMTP error, a restart, a rerun) sends nothing twice.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from store.models import Ack, AckStatus, Submission, SubmissionKind, SubmissionStatus
from store.parts import skipped_by_submission

from .ack import (
    OWN_ADDRESS,
    AckAttachment,
    AckContent,
    ack_message_id,
    describe_unread,
    own_mail_reason,
    render_ack,
    robot_reason,
)
from .config import Settings
from .errors import DeliveryError
from .mailer import Mailer, SmtpConnection

__all__ = [
    "SendReport",
    "find_bounced_ack",
    "own_addresses",
    "queue_ack",
    "quoted_ack_ids",
    "request_resend",
    "send_due",
]

log = logging.getLogger(__name__)


@dataclass
class SendReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def own_addresses(settings: Settings) -> set[str]:
    """Our addresses, lower case: [smtp] from, the sign-in(s), [ack] own_addresses."""
    candidates = [email.utils.parseaddr(settings.smtp.sender)[1]] if settings.smtp else []
    if settings.imap is not None:
        # "user@x" or, for a shared mailbox, "user@x\\shared@x" (Microsoft 365)
        candidates += re.split(r"[\\/]", settings.imap.username)
    if settings.smtp is not None:
        candidates += re.split(r"[\\/]", settings.smtp.username)
    if settings.oauth2 is not None:
        candidates.append(settings.oauth2.account)
    candidates += settings.ack.own_addresses
    return {c.strip().lower() for c in candidates if "@" in c}


def _backoff(attempts: int) -> dt.timedelta:
    """2, 4, 8 ... minutes between attempts, at most 2 hours."""
    return dt.timedelta(minutes=min(2**attempts, 120))


def queue_ack(
    session: Session,
    submission: Submission,
    settings: Settings,
    now: dt.datetime,
    headers: dict[str, str],
    *,
    enabled: bool = True,
) -> None:
    """Decide the acknowledgement of a freshly read submission and queue it (no I/O).

    Called inside the transaction that saves the reading; does nothing when the
    submission already has one.
    """
    if submission.kind == SubmissionKind.OWN_MAIL and submission.ack_status == AckStatus.NONE:
        _suppress_own_mail(session, submission, settings, now, headers)
        return
    if submission.kind != SubmissionKind.RESPONSE or submission.ack_status != AckStatus.NONE:
        return  # decided before (sent, suppressed, or off for a backfill): never again
    existing = session.scalar(
        select(Ack).where(Ack.submission_id == submission.id, Ack.sequence == 0)
    )
    if existing is not None:
        return
    if not (enabled and settings.acks_on and settings.smtp):
        if submission.ack_status == AckStatus.NONE:
            submission.ack_status = AckStatus.OFF
        return
    to_addr = submission.reply_to or submission.sender_email or ""
    reason = robot_reason(
        headers,
        submission.sender_email or "",
        submission.reply_to or "",
        own_addresses(settings),
        submission.message_id,
    )
    if reason is None:
        since = now - dt.timedelta(days=1)
        recent = (
            session.scalar(
                select(func.count())
                .select_from(Ack)
                .where(
                    Ack.to_addr == to_addr,
                    Ack.created_at >= since,
                    Ack.status.in_([AckStatus.PENDING, AckStatus.SENDING, AckStatus.SENT]),
                )
            )
            or 0
        )
        limit = settings.ack.max_per_sender_per_day
        if recent >= limit:
            reason = f"rate limit: already {recent} acknowledgement(s) to {to_addr} in 24 hours"
    domain = settings.smtp.sender.rpartition("@")[2] or "localhost"
    ack = Ack(
        submission_id=submission.id,
        sequence=0,
        status=AckStatus.SUPPRESSED if reason else AckStatus.PENDING,
        reason=reason,
        to_addr=to_addr or None,
        message_id=ack_message_id(
            submission.reference or str(submission.id), 0, domain, secrets.token_hex(6)
        ),
        attempts=0,
        created_at=now,
    )
    session.add(ack)
    submission.ack_status = ack.status


def _suppress_own_mail(
    session: Session,
    submission: Submission,
    settings: Settings,
    now: dt.datetime,
    headers: dict[str, str],
) -> None:
    """Record "suppressed: own address" for our own mail, acknowledgements on or off."""
    if session.scalar(select(Ack.id).where(Ack.submission_id == submission.id)) is not None:
        return
    reason = own_mail_reason(
        headers,
        submission.sender_email or "",
        submission.reply_to or "",
        own_addresses(settings),
        submission.message_id,
    )
    domain = settings.smtp.sender.rpartition("@")[2].strip(">") if settings.smtp else ""
    session.add(
        Ack(
            submission_id=submission.id,
            sequence=0,
            status=AckStatus.SUPPRESSED,
            reason=reason or OWN_ADDRESS,
            to_addr=None,
            message_id=ack_message_id(
                submission.reference or str(submission.id),
                0,
                domain or "localhost",
                secrets.token_hex(6),
            ),
            attempts=0,
            created_at=now,
        )
    )
    submission.ack_status = AckStatus.SUPPRESSED


def request_resend(
    session: Session, submission: Submission, settings: Settings, now: dt.datetime, who: str
) -> Ack:
    """Queue an explicit extra copy (``intake resend-ack``); recorded, never automatic."""
    if not settings.smtp:
        raise DeliveryError(
            "acknowledgements are off: there is no [smtp] section in the configuration"
        )
    last = session.scalar(select(func.max(Ack.sequence)).where(Ack.submission_id == submission.id))
    sequence = (last + 1) if last is not None else 1
    domain = settings.smtp.sender.rpartition("@")[2] or "localhost"
    ack = Ack(
        submission_id=submission.id,
        sequence=sequence,
        status=AckStatus.PENDING,
        to_addr=submission.reply_to or submission.sender_email,
        message_id=ack_message_id(
            submission.reference or "", sequence, domain, secrets.token_hex(6)
        ),
        attempts=0,
        created_at=now,
        requested_by=who,
    )
    session.add(ack)
    submission.ack_status = AckStatus.PENDING
    return ack


def _content(
    ack: Ack,
    submission: Submission,
    settings: Settings,
    sender: str,
    cutoff: dt.datetime,
    now: dt.datetime,
    unread_parts: Sequence[str] = (),
) -> AckContent:
    original = (
        None if submission.message_id.endswith("@derived.invalid>") else submission.message_id
    )
    return AckContent(
        consultation=settings.consultation.name,
        reference=submission.reference or "",
        to_addr=ack.to_addr or "",
        to_name=submission.sender_name or "",
        subject=submission.subject or "",
        original_message_id=original,
        received_at=submission.received_at or submission.fetched_at,
        on_time=submission.timeliness != "late",
        deadline=cutoff,
        attachments=[AckAttachment(a.filename, a.parse_status) for a in submission.attachments],
        contact=settings.consultation.contact,
        message_id=ack.message_id,
        sender=sender,
        date=now,
        too_large=submission.status == SubmissionStatus.TOO_LARGE,
        resend=ack.sequence > 0,
        unread_parts=unread_parts,
    )


def send_due(
    sessions: sessionmaker[Session],
    mailer: Mailer,
    settings: Settings,
    cutoff: dt.datetime,
    now: Callable[[], dt.datetime],
) -> SendReport:
    """Send every acknowledgement that is due; record each outcome at once."""
    report = SendReport()
    with sessions() as session:
        due = list(
            session.scalars(
                select(Ack.id)
                .where(
                    Ack.status.in_([AckStatus.PENDING, AckStatus.SENDING]),
                    (Ack.next_attempt_at.is_(None)) | (Ack.next_attempt_at <= now()),
                )
                .order_by(Ack.id)
            )
        )
    if not due:
        return report
    try:
        with mailer.connect() as connection:
            for ack_id in due:
                _send_one(
                    sessions, connection, ack_id, settings, mailer.sender, cutoff, now, report
                )
    except DeliveryError as exc:
        # The connection itself failed: every due row waits for the next attempt.
        report.errors.append(str(exc))
        with sessions() as session:
            for ack_id in due:
                ack = session.get(Ack, ack_id)
                if (
                    ack is not None
                    and ack.status in (AckStatus.PENDING, AckStatus.SENDING)
                    and ack.sent_at is None
                ):
                    _failed_attempt(
                        session,
                        ack,
                        str(exc),
                        settings,
                        now(),
                        count=ack.status == AckStatus.PENDING,
                    )
            session.commit()
    return report


def _send_one(
    sessions: sessionmaker[Session],
    connection: SmtpConnection,
    ack_id: int,
    settings: Settings,
    sender: str,
    cutoff: dt.datetime,
    now: Callable[[], dt.datetime],
    report: SendReport,
) -> None:
    with sessions() as session:
        ack = session.get(Ack, ack_id)
        if ack is None or ack.status not in (AckStatus.PENDING, AckStatus.SENDING):
            return
        submission = session.get(Submission, ack.submission_id)
        assert submission is not None
        skipped = skipped_by_submission(session, [submission.id]).get(submission.id, [])
        unread = describe_unread(skipped)
        message = render_ack(
            _content(ack, submission, settings, sender, cutoff, now(), unread),
            subject_format=settings.ack.subject,
            template_text=settings.ack.template_text,
            template_html=settings.ack.template_html,
        )
        # Claim the row: only the process whose conditional UPDATE matches sends it, so
        # two senders (a worker and `intake resend-ack`, say) never both send one row.
        claimed = session.execute(
            update(Ack)
            .where(Ack.id == ack.id, Ack.attempts == ack.attempts, Ack.status == ack.status)
            .values(status=AckStatus.SENDING, attempts=ack.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            session.rollback()
            return
        submission.ack_status = AckStatus.SENDING
        session.commit()
        session.refresh(ack)
        try:
            connection.send(message, [ack.to_addr or ""], sender)
        except DeliveryError as exc:
            report.errors.append(str(exc))
            _failed_attempt(session, ack, str(exc), settings, now(), count=False)
            session.commit()
            if ack.status == AckStatus.FAILED:
                report.failed += 1
            else:
                report.retrying += 1
            return
        ack.status = AckStatus.SENT
        ack.sent_at = now()
        ack.reason = None
        submission.ack_status = AckStatus.SENT
        session.commit()
        report.sent += 1
        log.info("ack sent", extra={"reference": submission.reference})


def _failed_attempt(
    session: Session, ack: Ack, error: str, settings: Settings, at: dt.datetime, *, count: bool
) -> None:
    if count:
        ack.attempts += 1
    ack.reason = error[:2000]
    submission = session.get(Submission, ack.submission_id)
    if ack.attempts >= settings.ack.max_attempts:
        ack.status = AckStatus.FAILED
    else:
        ack.status = AckStatus.PENDING
        ack.next_attempt_at = at + _backoff(ack.attempts)
    if submission is not None:
        submission.ack_status = ack.status


_OUR_ACK_ID = re.compile(rb"<ack\.[A-Za-z0-9-]+\.\d+\.[0-9a-f]+@[A-Za-z0-9.-]+>")


def quoted_ack_ids(blobs: Iterable[bytes]) -> list[str]:
    """Message-IDs of our acknowledgements quoted anywhere in ``blobs``."""
    found: dict[str, None] = {}
    for blob in blobs:
        for match in _OUR_ACK_ID.finditer(blob):
            found[match.group().decode("ascii")] = None
    return list(found)


def find_bounced_ack(session: Session, message_ids: Sequence[str]) -> Ack | None:
    """The acknowledgement a delivery report is about."""
    if not message_ids:
        return None
    return session.scalar(select(Ack).where(Ack.message_id.in_(list(message_ids))).limit(1))
