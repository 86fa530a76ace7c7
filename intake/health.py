"""What ``intake status`` reports, and whether the worker looks healthy."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from store import repo
from store.models import DigestRun, PollRun, Submission

from .config import Settings
from .daily import describe
from .deadline import UK, deadline_instant, format_uk
from .worker import inbox_name

__all__ = ["Health", "gather_health"]


@dataclass(frozen=True)
class Health:
    settings: Settings
    now: dt.datetime
    last_ok: PollRun | None
    last: PollRun | None
    timeliness: dict[str, int]
    statuses: dict[str, int]
    acks: dict[str, int]
    digest: DigestRun | None

    @property
    def healthy(self) -> bool:
        """False when the last poll failed, or no poll succeeded within three intervals."""
        if self.last is None or not self.last.ok or self.last_ok is None:
            return False
        overdue = dt.timedelta(minutes=3 * self.settings.schedule.poll_every_minutes)
        finished = self.last_ok.finished_at
        return finished is not None and self.now - finished <= overdue

    def deadline_words(self) -> str:
        c = self.settings.consultation
        cutoff = deadline_instant(c.deadline, c.zone, c.grace_minutes)
        days = (cutoff.astimezone(UK).date() - self.now.astimezone(UK).date()).days
        if self.now > cutoff:
            state = "closed"
        elif days == 0:
            state = "closes today"
        else:
            state = f"{days} day(s) left"
        return f"deadline {format_uk(cutoff)} ({state})"

    def lines(self) -> list[str]:
        s = self.settings
        found = [
            f"{s.consultation.name}: {self.deadline_words()}",
            f"Inbox: {inbox_name(s) if s.imap or s.maildir else 'none configured'}",
            "Last successful poll: "
            + (format_uk(self.last_ok.finished_at) if self.last_ok else "never"),
        ]
        if self.last is not None and not self.last.ok:
            found.append(
                f"Last poll FAILED at {format_uk(self.last.finished_at)}: {self.last.error}"
            )
        total = sum(self.timeliness.values())
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items()))
        found.append(
            f"Submissions: {total} (on time {self.timeliness.get('on_time', 0)}, "
            f"late {self.timeliness.get('late', 0)}); {counts}"
        )
        if s.acks_on:
            acks = ", ".join(f"{k} {v}" for k, v in sorted(self.acks.items())) or "none yet"
            found.append(f"Acknowledgements: {acks}")
        else:
            found.append("Acknowledgements: off (no [smtp] section, or [ack] enabled = false)")
        found.append(f"Last digest: {describe(self.digest) if self.digest else 'none sent'}")
        if not self.healthy:
            found.append(f"UNHEALTHY: {self.trouble()}")
        return found

    def trouble(self) -> str:
        """Why the worker does not look healthy, in words (empty when it does)."""
        if self.healthy:
            return ""
        if self.last is not None and not self.last.ok:
            return "the last poll failed (see 'Last poll FAILED' above)"
        if self.last_ok is None:
            return "no poll has succeeded yet; run `intake poll`, or start `intake worker`"
        minutes = 3 * self.settings.schedule.poll_every_minutes
        return (
            f"no successful poll in the last {minutes:g} minutes (three poll intervals); "
            "is `intake worker` running?"
        )


def gather_health(session: Session, settings: Settings, now: dt.datetime) -> Health:
    return Health(
        settings=settings,
        now=now,
        last_ok=repo.last_poll_run(session, ok=True),
        last=repo.last_poll_run(session),
        timeliness=repo.count_by(session, Submission.timeliness),
        statuses=repo.count_by(session, Submission.status),
        acks=repo.ack_counts(session),
        digest=repo.last_sent_digest(session),
    )
