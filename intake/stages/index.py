"""The ``index`` stage: make one response findable by ``intake search``.

Runs after the response is read, inside the caller's transaction; re-running it
replaces the response's rows, so a re-read response is found by its new text only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from store.search import index_submissions

if TYPE_CHECKING:
    from intake.context import AppContext

__all__ = ["index_one", "run", "run_many"]


def index_one(session: Session, submission_id: int) -> None:
    """(Re)index one submission from its stored text; purged ones lose their rows."""
    index_submissions(session, [submission_id])


def run(app: AppContext, session: Session, submission_id: int) -> None:
    """The stage entry point: the index needs nothing from ``app`` but the session."""
    index_one(session, submission_id)


def run_many(app: AppContext, session: Session, submission_ids: Sequence[int]) -> None:
    """A claimed batch at once: one delete and one insert for all of them."""
    index_submissions(session, submission_ids)
