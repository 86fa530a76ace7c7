"""The ``ack`` stage: decide a read submission's acknowledgement and queue it (no I/O).

Runs after ``read``. Robots, our own mail and senders over the daily limit are
recorded as ``suppressed``; everyone else gets one ``pending`` outbox row, unique
per submission, which :func:`intake.mail.outbox.send_due` sends under an exclusive
claim. Sending is not part of this stage on purpose: one SMTP connection serves
the whole batch, and a slow or refusing server never holds a stage claim.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from store.models import Submission, SubmissionKind

from ..mail.outbox import queue_ack
from .classify import classify_kind

if TYPE_CHECKING:
    from ..context import AppContext

__all__ = ["run"]


def run(app: AppContext, session: Session, submission_id: int) -> None:
    """Queue the acknowledgement of one read submission (in the caller's transaction)."""
    submission = session.get(Submission, submission_id)
    if submission is None:
        return
    headers = json.loads(submission.headers_json or "{}")
    # An automatic reply (the classify stage) is decided as a response would be, then
    # held back with its reason in this same transaction: nothing can send it between.
    auto_reply = submission.kind == SubmissionKind.AUTO_REPLY
    if auto_reply:
        submission.kind = SubmissionKind.RESPONSE
    queue_ack(session, submission, app.settings, app.now(), headers, enabled=True)
    if auto_reply:
        classify_kind(session, submission)
