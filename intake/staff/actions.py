"""Staff actions that change a submission: each one audited, shared by the CLI and the web.

``who`` names the person (the web view's signed-in user); the command line passes None
and its audit records read as before. Callers own nothing here: every function opens
and commits its own transaction, so a web request and a command behave alike.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from store import browse, repo, tags
from store import users as user_store
from store.models import SubmissionKind

from ..analysis.respondent import RESPONDENT_TYPES
from ..app import App
from ..errors import IntakeError
from ..mail import outbox
from ..mail.outbox import SendReport

__all__ = [
    "ActionRefused",
    "ReparseReport",
    "TagDecision",
    "add_note",
    "decide_tags",
    "mark_not_response",
    "reparse",
    "reparse_ids",
    "resend_ack",
    "set_timeliness",
]


class ActionRefused(IntakeError):
    """Raised when an action does not apply to this submission (e.g. a bad value)."""


def _by(who: str | None, detail: str) -> str:
    return f"by {who}: {detail}" if who else detail


def set_timeliness(
    app: App, reference: str, timeliness: str, reason: str, who: str | None = None
) -> tuple[str | None, str]:
    """Override on time / late with a reason (kept with the record); returns (before, after)."""
    if timeliness not in ("on_time", "late"):
        raise ActionRefused(f"timeliness must be on_time or late, not {timeliness!r}")
    if not reason.strip():
        raise ActionRefused("give a reason: it is kept with the record")
    with app.sessions() as session:
        sub = repo.get_by_reference(session, reference)
        before = sub.timeliness
        sub.timeliness = timeliness
        sub.timeliness_override_reason = (
            f"{reason.strip()} (by {who})" if who else reason.strip()
        )[:2000]
        repo.audit(
            session,
            "set-timeliness",
            sub.reference,
            _by(who, f"{before} -> {timeliness}: {reason.strip()}"),
            app.now(),
        )
        session.commit()
    return before, timeliness


def reparse_ids(
    app: App,
    references: Sequence[str] = (),
    *,
    failed: bool = False,
    status: str | None = None,
) -> tuple[list[int], Counter[str]]:
    """The submissions a reparse would read, and their attachments' statuses now."""
    with app.sessions() as session:
        if references:
            ids = [repo.get_by_reference(session, ref).id for ref in references]
        else:
            ids = browse.ids_for_reparse(session, failed=failed, status=status)
        before = Counter(browse.attachment_status_counts(session, ids))
    return ids, before


@dataclass(frozen=True)
class ReparseReport:
    before: Counter[str]
    after: Counter[str]


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"


def reparse(
    app: App,
    ids: Sequence[int],
    before: Counter[str],
    *,
    who: str | None = None,
    reference: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReparseReport:
    """Read submissions again from their stored bytes (never from the mailbox); audited."""
    with app.pipeline() as pipeline:
        pipeline.read(ids, progress)
    with app.sessions() as session:
        after = Counter(browse.attachment_status_counts(session, ids))
        repo.audit(
            session,
            "reparse",
            reference,
            _by(who, f"{len(ids)} submission(s): {_counts(before)} -> {_counts(after)}"),
            app.now(),
        )
        session.commit()
    return ReparseReport(before, after)


def resend_ack(
    app: App, reference: str, reason: str, who: str | None = None
) -> tuple[str | None, SendReport]:
    """Queue the acknowledgement again (explicit, recorded) and try to send it now.

    Raises:
        DeliveryError: acknowledgements are off (no [smtp] section).
    """
    with app.sessions() as session:
        submission = repo.get_by_reference(session, reference)
        requested = f"web: {who}" if who else (reason or "intake resend-ack")
        ack = outbox.request_resend(session, submission, app.settings, app.now(), requested)
        repo.audit(session, "resend-ack", submission.reference, _by(who, reason), app.now())
        session.commit()
        to_addr = ack.to_addr
    with app.pipeline() as pipeline:
        report = pipeline.send_acks()
    return to_addr, report


def mark_not_response(app: App, reference: str, reason: str, who: str | None = None) -> None:
    """File a message as not a response (spam, a query): it leaves every count and list."""
    if not reason.strip():
        raise ActionRefused("give a reason: it is kept in the audit trail")
    with app.sessions() as session:
        sub = repo.get_by_reference(session, reference)
        before = sub.kind
        sub.kind = SubmissionKind.NOT_RESPONSE
        repo.audit(
            session,
            "not-a-response",
            sub.reference,
            _by(who, f"{before} -> {SubmissionKind.NOT_RESPONSE}: {reason.strip()}"),
            app.now(),
        )
        session.commit()


def add_note(app: App, reference: str, text: str, who: str) -> None:
    """Keep a private note with a submission (staff only; never sent anywhere)."""
    text = text.replace("\x00", "").strip()
    if not text:
        raise ActionRefused("the note is empty")
    if len(text) > 10_000:
        raise ActionRefused("the note is too long (at most 10,000 characters)")
    with app.sessions() as session:
        sub = repo.get_by_reference(session, reference)
        user_store.add_note(session, sub.id, who, text, app.now())
        repo.audit(session, "note", sub.reference, _by(who, "added a private note"), app.now())
        session.commit()


@dataclass(frozen=True)
class TagDecision:
    """A person's word on one passage: it answers ``question`` (tagged) or it does not."""

    passage: int  # the passage's number within its response, as listed
    question: str
    decision: str  # tags.TAGGED or tags.REJECTED


def decide_tags(
    app: App,
    reference: str,
    decisions: Sequence[TagDecision],
    who: str,
    *,
    kind: str | None = None,
    organisation: str | None = None,
) -> None:
    """Record staff decisions on passages and the respondent; each audited, kept on re-runs.

    Raises:
        ActionRefused: an unknown question, decision or respondent type.
        NotFound: no such response, or no such passage in it.
    """
    keys = {q.key for q in app.settings.questions}
    for d in decisions:
        if d.question not in keys:
            known = ", ".join(sorted(keys)) or "none configured"
            raise ActionRefused(f"no question {d.question!r}; the questions are {known}")
        if d.decision not in (tags.TAGGED, tags.REJECTED):
            raise ActionRefused(f"a decision is {tags.TAGGED} or {tags.REJECTED}")
    if kind is not None and kind not in RESPONDENT_TYPES:
        raise ActionRefused(f"respondent type is one of {', '.join(RESPONDENT_TYPES)}")
    now = app.now()
    with app.sessions() as session:
        submission = repo.get_by_reference(session, reference)
        for d in decisions:
            tags.set_tag(session, submission.id, d.passage, d.question, d.decision, who, now)
            detail = f"{d.passage}:{d.question} by {who}"
            repo.audit(session, f"tag_{d.decision}", submission.reference, detail, now)
        if kind is not None or organisation is not None:
            tags.set_respondent(
                session, submission.id, now, who, kind=kind, organisation=organisation
            )
            detail = f"type={kind} organisation={organisation!r} by {who}"
            repo.audit(session, "set_respondent", submission.reference, detail, now)
        session.commit()
