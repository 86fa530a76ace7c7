"""The staff digest: gather it from the store, and send it once a day.

The period runs from the end of the last digest that was sent to now, so a missed
day is folded into the next one. The scheduled digest claims its UK date in the
database (a unique key, then a claim with an expiry) before it is sent, so a restart
at send time, or two workers, cannot send two for the same day; a worker whose
claim is live is left to finish, and a dead one's digest goes out again with the
same Message-ID.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session, sessionmaker

from store import repo, tags, work
from store.campaigns import honest_counts
from store.models import DigestRun, Submission
from store.parts import SkippedPartRow, skipped_by_submission

from ..config import Settings
from ..deadline import format_uk
from ..errors import DeliveryError
from ..mail.message import UNREAD_REASONS
from ..mail.smtp import Mailer
from .digest import (
    DigestAttachment,
    DigestData,
    DigestSkippedPart,
    DigestSubmission,
    render_digest,
)
from .erasure import retention_forecast

__all__ = ["build_digest", "describe", "inbox_problems", "send_digest", "stage_problems"]

__all__ = ["build_digest", "describe", "inbox_problems", "own_mail_notes", "send_digest"]

_CHART_DAYS = 14


def _skipped_row(part: SkippedPartRow) -> DigestSkippedPart:
    return DigestSkippedPart(
        label=part.filename or part.content_type,
        reason=part.reason,
        unread=part.reason in UNREAD_REASONS,
    )


def _digest_row(
    sub: Submission, ack_error: str | None, skipped: Sequence[SkippedPartRow] = ()
) -> DigestSubmission:
    return DigestSubmission(
        reference=sub.reference or "",
        sender_name=sub.sender_name,
        sender_email=sub.sender_email,
        subject=sub.subject,
        received_at=sub.received_at or sub.fetched_at,
        timeliness=sub.timeliness,
        sent_in_time=sub.sent_in_time,
        status=sub.status,
        ack_status=sub.ack_status,
        ack_error=ack_error,
        attachments=tuple(
            DigestAttachment(a.filename, a.parse_status, a.error)
            for a in sub.attachments
            if not repo.is_decoration(a.filename, a.content_type, a.size)
        ),
        skipped=tuple(_skipped_row(part) for part in skipped),
    )


def inbox_problems(session: Session) -> tuple[str, ...]:
    """For "needs attention": why the inbox could not be read, when the last poll failed."""
    last = repo.last_poll_run(session)
    if last is None or last.ok is not False or not last.error:
        return ()
    when = format_uk(last.finished_at)
    return (f"The inbox could not be read (last tried {when}): {last.error}",)


def stage_problems(session: Session, limit: int = 20) -> tuple[str, ...]:
    """For "needs attention": stages that failed for good, and UIDs the server withheld."""
    failed = work.failed_stages(session)
    lines = tuple(
        f"{reference}: the {stage} stage failed after {attempts} attempt(s): {error[:200]}"
        for reference, stage, attempts, error in failed[:limit]
    )
    if len(failed) > limit:
        lines += (f"... and {len(failed) - limit} more: see `intake list --failed`",)
    lines += tuple(
        f"UID {gap.uid} in {gap.mailbox} was listed by the server but never returned "
        f"({gap.attempts} attempt(s) since {format_uk(gap.first_seen)}); it is asked for "
        "again at every poll: check it in a mail client"
        for gap in work.unfetched(session)[:limit]
    )
    return lines


def own_mail_notes(
    session: Session, start: dt.datetime | None, end: dt.datetime
) -> tuple[str, ...]:
    """For "needs attention": our own mail that came in, kept but not counted or acknowledged."""
    return tuple(
        f"{reference}: {reason or 'own address'}; kept, but not counted as a response "
        "and not acknowledged"
        for reference, reason in repo.period_own_mail(session, start, end)
    )


def build_digest(
    session: Session,
    settings: Settings,
    end: dt.datetime,
    start: dt.datetime | None,
    attention_extra: tuple[str, ...] = (),
) -> DigestData:
    """Everything the digest for (start, end] says, read from the store."""
    consultation = settings.consultation
    zone = consultation.zone
    subs: list[Submission] = repo.period_submissions(session, start, end)
    acks = repo.acks_by_submission(session, [s.id for s in subs])
    skipped = skipped_by_submission(session, [s.id for s in subs])
    timeliness = repo.count_by(session, Submission.timeliness)
    questions = tags.question_counts(session)
    today = end.astimezone(zone).date()
    first_day = today - dt.timedelta(days=_CHART_DAYS - 1)
    chart_start = dt.datetime.combine(first_day, dt.time(), tzinfo=zone).astimezone(dt.UTC)
    per_day = Counter(
        instant.astimezone(zone).date() for instant in repo.arrivals_since(session, chart_start)
    )
    return DigestData(
        consultation_name=consultation.name,
        period_start=start,
        period_end=end,
        deadline=consultation.cutoff,
        timezone=zone,
        new=tuple(
            _digest_row(s, acks[s.id].reason if s.id in acks else None, skipped.get(s.id, []))
            for s in subs
        ),
        totals_received=sum(timeliness.values()),
        totals_on_time=timeliness.get("on_time", 0),
        totals_late=timeliness.get("late", 0),
        arrivals_by_day=tuple(
            (first_day + dt.timedelta(days=n), per_day.get(first_day + dt.timedelta(days=n), 0))
            for n in range(_CHART_DAYS)
        ),
        retention=retention_forecast(session, settings.retention, zone, end).words(),
        attention_extra=inbox_problems(session)
        + stage_problems(session)
        + own_mail_notes(session, start, end)
        + attention_extra,
        per_question=tuple((q.key, q.title, questions.get(q.key, 0)) for q in settings.questions),
        per_type=tuple(sorted(tags.type_counts(session).items())),
        counted=counted_line(session),
    )


def counted_line(session: Session) -> str | None:
    """Honest counts, once campaign copies or revised versions have been found."""
    counts = honest_counts(session)
    if not counts.campaign_copies and not counts.superseded:
        return None
    return counts.line()


def send_digest(
    sessions: sessionmaker[Session],
    settings: Settings,
    mailer: Mailer,
    now: Callable[[], dt.datetime],
    *,
    scheduled: bool,
    since: dt.datetime | None = None,
    attention_extra: tuple[str, ...] = (),
) -> DigestRun | None:
    """Send the digest to ``[digest] recipients``; None when today's was already sent.

    Raises:
        DeliveryError: no recipients are configured, or the SMTP server refused it.
    """
    recipients = settings.digest.recipients
    if not recipients:
        raise DeliveryError("no digest recipients: set [digest] recipients in the configuration")
    end = now()
    holder = work.holder_id()
    with sessions() as session:
        if scheduled:
            day = end.astimezone(settings.consultation.zone).date()
            ttl = dt.timedelta(seconds=4 * mailer.settings.timeout_s + 120)
            run = work.claim_digest_day(session, day, holder, end, ttl)
            if run is None:
                return None  # sent already, or another worker is sending it right now
        else:
            run = DigestRun(day=None, period_end=end, status="sending")
            session.add(run)
        last = repo.last_sent_digest(session)
        start = since if since is not None else (last.period_end if last else None)
        resent_id = None
        if run.id is not None and run.message_id:
            # A crash (or a dead worker) after the message was built: the same digest,
            # the same period, the same Message-ID.
            start, end, resent_id = run.period_start, run.period_end, run.message_id
        run.period_start, run.period_end, run.status, run.error = start, end, "sending", None
        session.commit()
        data = build_digest(session, settings, end, start, attention_extra)
        message = render_digest(
            data, sender=mailer.sender, recipients=recipients, message_id_domain=mailer.domain
        )
        if resent_id is not None:
            message.replace_header("Message-ID", resent_id)
        run.message_id = str(message["Message-ID"])
        session.commit()
        try:
            with mailer.connect() as connection:
                connection.send(message, list(recipients), mailer.sender)
        except DeliveryError as exc:
            run.status, run.error = "failed", str(exc)
            run.claimed_by = run.claimed_until = None
            session.commit()
            raise
        run.status, run.sent_at = "sent", now()
        run.claimed_by = run.claimed_until = None
        session.commit()
        return run


def describe(run: DigestRun) -> str:
    end = format_uk(run.period_end)
    period = (
        f"{format_uk(run.period_start)} to {end}" if run.period_start else f"everything up to {end}"
    )
    return f"digest for {period}: {run.status}"
