"""Reading a selection of submissions in bulk: the rows ``intake list`` prints, the
streams ``intake export`` writes, counts, ids and references.

A selection is a ``Select[Submission]`` built by :func:`store.repo.select_submissions`
(or any query over submissions); these functions run it. Rows are streamed with
``yield_per``, so a list of 100,000 submissions holds no more than a batch in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Row, Select, func, select
from sqlalchemy.orm import Session

from .models import Attachment, Submission
from .repo import list_rows

__all__ = [
    "count_selected",
    "export_streams",
    "list_rows_by_arrival",
    "references_of",
    "submission_ids",
]


def list_rows_by_arrival(session: Session, query: Select[Submission]) -> Iterator[Row[Any]]:
    """``intake list``'s columns for ``query``'s rows, in order of arrival, streamed."""
    return iter(
        session.execute(
            list_rows(query)
            .order_by(None)
            .order_by(Submission.received_at, Submission.id)
            .execution_options(yield_per=2000)
        )
    )


def count_selected(session: Session, query: Select[Submission]) -> int:
    """How many submissions ``query`` selects."""
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def export_streams(
    session: Session,
    query: Select[Submission],
    submission_columns: Sequence[str],
    attachment_columns: Sequence[str],
) -> tuple[Iterator[Row[Any]], Iterator[Row[Any]]]:
    """Two streams for an export: the submissions ``query`` selects, in its (id) order,
    and their attachments in (submission id, position) order, with the named columns."""
    submissions = session.execute(
        query.with_only_columns(
            *[getattr(Submission, name) for name in submission_columns]
        ).execution_options(yield_per=1000)
    )
    ids = query.with_only_columns(Submission.id).order_by(None)
    attachments = session.execute(
        select(*[getattr(Attachment, name) for name in attachment_columns])
        .where(Attachment.submission_id.in_(ids))
        .order_by(Attachment.submission_id, Attachment.position)
        .execution_options(yield_per=1000)
    )
    return iter(submissions), iter(attachments)


def submission_ids(
    session: Session, *, kinds: Iterable[str], status: str | None = None
) -> list[int]:
    """The ids of the submissions of ``kinds`` (in ``status`` when given), in id order."""
    query = select(Submission.id).where(Submission.kind.in_(list(kinds)))
    if status is not None:
        query = query.where(Submission.status == status)
    return list(session.scalars(query.order_by(Submission.id)))


def references_of(session: Session, ids: Iterable[int]) -> list[str]:
    """The references of the submissions ``ids``, in id order (asked 500 at a time)."""
    wanted = list(ids)
    found: list[str] = []
    for start in range(0, len(wanted), 500):
        found += [
            str(ref)
            for ref in session.scalars(
                select(Submission.reference)
                .where(Submission.id.in_(wanted[start : start + 500]))
                .order_by(Submission.id)
            )
        ]
    return found
