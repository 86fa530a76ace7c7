"""The ``classify`` stage: an out-of-office reply is filed as such, not counted as a response.

Out-of-office replies reach a consultation inbox whenever staff write to respondents
(or a respondent's auto-reply answers our acknowledgement). They are kept, but with
``kind = "auto_reply"``, so the response totals, the list, the export and the digest
leave them out and no acknowledgement is sent to them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from store import repo
from store.models import Submission, SubmissionKind

if TYPE_CHECKING:
    from intake.context import AppContext

__all__ = ["auto_reply_reason", "classify_kind", "classify_many", "run", "run_many"]

# Subject prefixes mail programs put on automatic replies (Outlook, Exchange, Gmail,
# and in Welsh, German, French and Spanish); compared case-insensitively.
_SUBJECT_PREFIXES = (
    "automatic reply:",
    "auto reply:",
    "autoreply:",
    "auto-reply:",
    "out of office",
    "out of the office",
    "ateb awtomatig",
    "abwesenheitsnotiz",
    "automatische antwort",
    "réponse automatique",
    "respuesta automática",
)


def auto_reply_reason(headers: Mapping[str, str], subject: str, attachments: int) -> str | None:
    """Why this message is an automatic reply, or None when it is not one.

    Headers are decisive (RFC 3834 ``Auto-Submitted: auto-replied`` and the common
    ``X-Autoreply`` family); a subject such as "Automatic reply:" counts only for a
    message without attachments, so a response that quotes one is never lost.
    """
    lower = {name.lower(): value.strip().lower() for name, value in headers.items()}
    if lower.get("auto-submitted", "").startswith("auto-replied"):
        return "Auto-Submitted: auto-replied"
    for name in ("x-autoreply", "x-autorespond"):
        if name in lower:
            return f"{name} header"
    if lower.get("precedence") == "auto_reply":
        return "Precedence: auto_reply"
    if attachments == 0 and subject.strip().lower().startswith(_SUBJECT_PREFIXES):
        return f"subject {subject.strip()[:60]!r}"
    return None


def classify_kind(session: Session, submission: Submission) -> None:
    """File ``submission`` as an automatic reply when it is one (a response otherwise)."""
    classify_many(session, [submission.id])
    session.refresh(submission)  # the kind and acknowledgement as now stored


def classify_many(session: Session, ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """File each of these submissions as an automatic reply when it is one.

    Runs after the acknowledgement was decided: an automatic reply that only its
    subject gives away has its pending acknowledgement held back, with the reason.
    Only kinds that change are written; returns them, ``{id: (before, after)}``.
    """
    session.flush()
    changed: dict[int, tuple[str, str]] = {}
    replies: dict[int, str] = {}
    for row in repo.kind_inputs(session, ids):
        if row.kind not in (SubmissionKind.RESPONSE, SubmissionKind.AUTO_REPLY):
            continue  # a bounce of our acknowledgement, say: another stage's business
        headers = json.loads(row.headers_json or "{}")
        reason = auto_reply_reason(headers, row.subject or "", row.attachments)
        kind = SubmissionKind.AUTO_REPLY if reason else SubmissionKind.RESPONSE
        if kind != row.kind:
            changed[row.id] = (row.kind, kind)
        if reason:
            replies[row.id] = reason
    repo.set_kinds(session, {sid: after for sid, (_, after) in changed.items()})
    for submission_id, reason in replies.items():
        submission = session.get(Submission, submission_id, populate_existing=True)
        if submission is not None:
            repo.suppress_pending_ack(session, submission, f"an automatic reply ({reason})")
    return changed


def run(app: AppContext, session: Session, submission_id: int) -> None:
    """The stage: classify one stored, read submission."""
    classify_many(session, [submission_id])


def run_many(app: AppContext, session: Session, ids: Sequence[int]) -> None:
    """The stage for a claimed batch: a few queries for the lot."""
    classify_many(session, ids)
