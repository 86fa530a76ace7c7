"""What ``intake status`` reports, and whether the worker looks healthy."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from store import repo, tags, work
from store.models import DigestRun, PollRun, Submission
from store.queue import QueueOverview, queue_overview

from ..config import Settings
from ..deadline import UK, format_uk
from ..worker import inbox_name
from .daily import counted_line, describe
from .erasure import RetentionForecast, retention_forecast

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
    stages: dict[str, dict[str, int]]
    failed_stages: list[tuple[str, str, int, str]]
    unfetched: list[work.UnfetchedUid]
    queue: QueueOverview | None = None
    retention: RetentionForecast | None = None
    questions: dict[str, int] = field(default_factory=dict)  # responses per question key
    types: dict[str, int] = field(default_factory=dict)  # responses per respondent type
    counted: str | None = None

    @property
    def healthy(self) -> bool:
        """False when the last poll failed, or no poll succeeded within three intervals."""
        if self.last is None or not self.last.ok or self.last_ok is None:
            return False
        overdue = dt.timedelta(minutes=3 * self.settings.schedule.poll_every_minutes)
        finished = self.last_ok.finished_at
        return finished is not None and self.now - finished <= overdue

    def deadline_words(self) -> str:
        cutoff = self.settings.consultation.cutoff
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
        if self.counted:
            found.append(f"Counted: {self.counted}")
        if s.acks_on:
            acks = ", ".join(f"{k} {v}" for k, v in sorted(self.acks.items())) or "none yet"
            found.append(f"Acknowledgements: {acks}")
        else:
            found.append("Acknowledgements: off (no [smtp] section, or [ack] enabled = false)")
        found.append(f"Last digest: {describe(self.digest) if self.digest else 'none sent'}")
        if self.stages:
            found.append(
                "Stages: "
                + "; ".join(
                    f"{stage} " + ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
                    for stage, states in sorted(self.stages.items())
                )
            )
        for reference, stage, attempts, error in self.failed_stages[:10]:
            found.append(
                f"NEEDS ATTENTION: {reference} {stage} failed after {attempts} attempt(s): "
                f"{error[:200]}"
            )
        for gap in self.unfetched[:10]:
            found.append(
                f"NEEDS ATTENTION: UID {gap.uid} in {gap.mailbox} was listed but never returned "
                f"by the server ({gap.attempts} attempt(s)); retried at every poll"
            )
        if len(self.failed_stages) > 10:
            found.append(f"... {len(self.failed_stages) - 10} more: see `intake list --failed`")
        found.extend(self._queue_lines())

        if self.retention is not None:
            found.append(self.retention.line())
        if s.questions:
            per_question = ", ".join(
                f"{q.key} ({q.title}) {self.questions.get(q.key, 0)}" for q in s.questions
            )
            found.append(f"Responses per question: {per_question}")
        if self.types:
            per_type = ", ".join(f"{k} {v}" for k, v in sorted(self.types.items()))
            found.append(f"Responses per respondent type: {per_type}")
        if not self.healthy:
            found.append(f"UNHEALTHY: {self.trouble()}")
        return found

    def _queue_lines(self) -> list[str]:
        """Who runs what, what waits and since when; the processors' heartbeats (PostgreSQL)."""
        queue = self.queue
        if queue is None:
            return []
        found = []
        for stage, holders in sorted(queue.running.items()):
            found.append(f"Running {stage}: {len(holders)} by {', '.join(sorted(holders)[:5])}")
        if queue.oldest_due is not None:
            found.append(
                f"Queue: {sum(queue.due.values())} due, oldest since "
                f"{format_uk(queue.oldest_due)}; {queue.waiting_jobs} job(s) waiting"
            )
        for beat in queue.workers:
            age = (self.now - beat.last_heartbeat).total_seconds()
            found.append(
                f"Processor {beat.worker_id}: last heartbeat {age:.0f} s ago, "
                f"{beat.jobs} job(s) running"
            )
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
        stages=work.stage_counts(session),
        failed_stages=work.failed_stages(session),
        unfetched=work.unfetched(session),
        queue=queue_overview(session),
        retention=retention_forecast(session, settings.retention, settings.consultation.zone, now),
        questions=tags.question_counts(session),
        types=tags.type_counts(session),
        counted=counted_line(session),
    )
