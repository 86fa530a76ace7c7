"""Acknowledgements through a database outbox: queued once, sent under a claim, never twice.

Each submission gets at most one automatic acknowledgement: the outbox row
``(submission_id, sequence=0)`` is unique, and it is written by the ``ack`` stage in
the transaction that records that stage done. Sending is:

1. *claim* the row: one conditional UPDATE sets ``sending``, attempts + 1, and
   ``claimed_by``/``claimed_until`` (``store.work.claim_ack``); only one process
   matches it, and nobody else may take it until the claim expires (or its holder,
   a process on this host, is gone);
2. hand the message to the SMTP server;
3. as soon as the server accepts it, mark the row ``sent`` and commit.

A row found in ``sending`` past its claim is sent again with the *same* Message-ID.

The real duplicate window is ``[smtp] timeout_s``, not milliseconds: a server that
accepted the message while our client was still waiting for its reply delivers it,
and our client, having timed out, records a failed attempt and later sends it again
(same Message-ID, so most mail clients show one message). A crash between the
server's "250" and our commit does the same. Nothing else sends a second copy:
a crash before step 2, an SMTP refusal, a restart, a rerun, two workers, or a worker
and ``intake resend-ack`` at once (tests/intake/test_exactly_once.py).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from store import acks, work
from store.models import Ack, AckStatus, Submission, SubmissionKind, SubmissionStatus
from store.parts import skipped_by_submission

from ..ack import (
    OWN_ADDRESS,
    AckAttachment,
    AckContent,
    ack_message_id,
    describe_unread,
    own_mail_reason,
    render_ack,
    robot_reason,
)
from ..config import Settings
from ..errors import DeliveryError
from .smtp import Mailer, SmtpConnection

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
    if acks.first_ack(session, submission.id) is not None:
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
        recent = acks.recent_acks_to(session, to_addr, since)
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
    if acks.has_ack(session, submission.id):
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
    if submission.ack_status == AckStatus.NONE:
        # Its automatic acknowledgement is not decided yet (the "ack" stage is due): a
        # resend now would take its place and muddle the count of copies.
        raise DeliveryError(
            f"{submission.reference} is not read and acknowledged yet; its acknowledgement "
            "goes out with the next poll. Run `intake poll`, then resend if still needed."
        )
    last = acks.last_sequence(session, submission.id)
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


def claim_ttl(settings: Settings) -> dt.timedelta:
    """How long a sender holds an outbox row: longer than any one SMTP exchange can take."""
    timeout = settings.smtp.timeout_s if settings.smtp else 30.0
    return dt.timedelta(seconds=4 * timeout + 60)


def send_due(
    sessions: sessionmaker[Session],
    mailer: Mailer,
    settings: Settings,
    cutoff: dt.datetime,
    now: Callable[[], dt.datetime],
    *,
    holder: str | None = None,
) -> SendReport:
    """Send every acknowledgement that is due, each under a claim; record each outcome at once."""
    report = SendReport()
    holder = holder or work.holder_id()
    with sessions() as session:
        due = work.due_acks(session, now())
    if not due:
        return report
    try:
        with mailer.connect() as connection:
            for ack_id in due:
                _send_one(
                    sessions,
                    connection,
                    ack_id,
                    settings,
                    mailer.sender,
                    cutoff,
                    now,
                    report,
                    holder,
                )
    except DeliveryError as exc:
        # The connection itself failed: every due row nobody else holds waits for the
        # next attempt.
        report.errors.append(str(exc))
        with sessions() as session:
            for ack_id in due:
                ack = session.get(Ack, ack_id)
                if ack is None or ack.sent_at is not None:
                    continue
                mine = ack.status == AckStatus.SENDING and ack.claimed_by == holder
                if ack.status == AckStatus.PENDING or mine:
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
    holder: str,
) -> None:
    with sessions() as session:
        # Claim the row: only the process whose conditional UPDATE matches sends it, and
        # the claim stays exclusive until it expires, so two senders (two workers, or a
        # worker and `intake resend-ack`) never both send one row.
        if not work.claim_ack(session, ack_id, holder, now(), claim_ttl(settings)):
            return
        ack = session.get(Ack, ack_id)
        assert ack is not None
        submission = session.get(Submission, ack.submission_id)
        assert submission is not None
        submission.ack_status = AckStatus.SENDING
        session.commit()

        skipped = skipped_by_submission(session, [submission.id]).get(submission.id, [])
        unread = describe_unread(skipped)
        message = render_ack(
            _content(ack, submission, settings, sender, cutoff, now(), unread),
            subject_format=settings.ack.subject,
            template_text=settings.ack.template_text,
            template_html=settings.ack.template_html,
        )
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
        ack.claimed_by = ack.claimed_until = None
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
    ack.claimed_by = ack.claimed_until = None
    submission = session.get(Submission, ack.submission_id)
    if ack.attempts >= settings.ack.max_attempts:
        ack.status = AckStatus.FAILED
        # The submission's "ack" stage shows the failure (intake list --failed, status).
        work.set_failed(session, ack.submission_id, "ack", f"not sent: {error}", at)
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
    return acks.ack_for_message_ids(session, message_ids)
