"""Parts of a message that were neither body text nor an attachment, and why.

The MIME reader accounts for every leaf part of a message; the ones it skips on
purpose (a signature image, the HTML copy of a plain body, a calendar invitation)
are kept here with their reason, so nothing is dropped without a word. Replaced
whole on every (re)reading of a submission, like its attachments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    delete,
    insert,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from .base import Base

__all__ = ["SkippedPartRow", "replace_skipped", "skipped_by_submission", "skipped_values"]


class SkippedPartRow(Base):
    """One leaf part of a submission deliberately not read, with the reason."""

    __tablename__ = "skipped_parts"
    __table_args__ = (
        UniqueConstraint("submission_id", "position", name="uq_skipped_parts_submission_position"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)  # the leaf's number in the message
    content_type: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str | None] = mapped_column(String(500))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    reason: Mapped[str] = mapped_column(String(100))


def replace_skipped(
    session: Session, submission_id: int, parts: Iterable[Mapping[str, object]]
) -> None:
    """Replace the skipped parts recorded for a submission (one dict per part)."""
    session.execute(delete(SkippedPartRow).where(SkippedPartRow.submission_id == submission_id))
    rows = [{"submission_id": submission_id, **skipped_values(part)} for part in parts]
    if rows:
        session.execute(insert(SkippedPartRow), rows)
    session.flush()


def skipped_values(part: Mapping[str, object]) -> dict[str, object]:
    """One skipped part's column values, each cut to its column."""
    return {
        "position": int(str(part["position"])),
        "content_type": str(part["content_type"])[:200],
        "filename": None if part.get("filename") is None else str(part["filename"])[:500],
        "size": int(str(part.get("size") or 0)),
        "reason": str(part["reason"])[:100],
    }


def skipped_by_submission(session: Session, ids: Sequence[int]) -> dict[int, list[SkippedPartRow]]:
    """The skipped parts of these submissions, in message order."""
    found: dict[int, list[SkippedPartRow]] = {}
    for start in range(0, len(ids), 500):
        rows = session.scalars(
            select(SkippedPartRow)
            .where(SkippedPartRow.submission_id.in_(list(ids[start : start + 500])))
            .order_by(SkippedPartRow.submission_id, SkippedPartRow.position)
        )
        for row in rows:
            found.setdefault(row.submission_id, []).append(row)
    return found
