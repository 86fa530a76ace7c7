"""The staff digest: gather it from the store, and send it once a day.

The period runs from the end of the last digest that was sent to now, so a missed
day is folded into the next one. The scheduled digest claims its UK date in the
database (a unique key) before it is sent, so a restart at send time, or two
workers, cannot send two for the same day.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from store import repo
from store.models import DigestRun, Submission

from .config import Settings
from .deadline import deadline_instant, format_uk
from .digest import DigestAttachment, DigestData, DigestSubmission, render_digest
from .errors import DeliveryError
from .mailer import Mailer

__all__ = ["build_digest", "describe", "inbox_problems", "send_digest"]

_CHART_DAYS = 14


def _digest_row(sub: Submission, ack_error: str | None) -> DigestSubmission:
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
    )


def inbox_problems(session: Session) -> tuple[str, ...]:
    """For "needs attention": why the inbox could not be read, when the last poll failed."""
    last = repo.last_poll_run(session)
    if last is None or last.ok is not False or not last.error:
        return ()
    when = format_uk(last.finished_at)
    return (f"The inbox could not be read (last tried {when}): {last.error}",)


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
    timeliness = repo.count_by(session, Submission.timeliness)
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
        deadline=deadline_instant(consultation.deadline, zone, consultation.grace_minutes),
        timezone=zone,
        new=tuple(_digest_row(s, acks[s.id].reason if s.id in acks else None) for s in subs),
        totals_received=sum(timeliness.values()),
        totals_on_time=timeliness.get("on_time", 0),
        totals_late=timeliness.get("late", 0),
        arrivals_by_day=tuple(
            (first_day + dt.timedelta(days=n), per_day.get(first_day + dt.timedelta(days=n), 0))
            for n in range(_CHART_DAYS)
        ),
        attention_extra=inbox_problems(session) + attention_extra,
    )


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
    day = end.astimezone(settings.consultation.zone).date() if scheduled else None
    with sessions() as session:
        existing = repo.digest_for_day(session, day) if day is not None else None
        if existing is not None and existing.status == "sent":
            return None
        last = repo.last_sent_digest(session)
        start = since if since is not None else (last.period_end if last else None)
        resent_id = None
        if existing is not None and existing.status == "sending" and existing.message_id:
            # A crash right after the server took it: send the same digest, same Message-ID.
            start, end, resent_id = existing.period_start, existing.period_end, existing.message_id
        run = existing or DigestRun(day=day)
        run.period_start, run.period_end, run.status, run.error = start, end, "sending", None
        session.add(run)
        try:
            session.commit()
        except IntegrityError:  # another worker claimed today's digest first
            session.rollback()
            return None
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
            session.commit()
            raise
        run.status, run.sent_at = "sent", now()
        session.commit()
        return run


def describe(run: DigestRun) -> str:
    end = format_uk(run.period_end)
    period = (
        f"{format_uk(run.period_start)} to {end}" if run.period_start else f"everything up to {end}"
    )
    return f"digest for {period}: {run.status}"
