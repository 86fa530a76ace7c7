"""Queries about acknowledgements: the outbox's questions and the ``intake acks`` list.

Callers own the transaction; nothing here commits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import Ack, AckStatus
from .repo import select_acks

__all__ = [
    "ack_for_message_ids",
    "acks_with_references",
    "first_ack",
    "has_ack",
    "last_sequence",
    "recent_acks_to",
]

# An acknowledgement that is going out or went out counts against the daily limit.
_COUNTED = (AckStatus.PENDING, AckStatus.SENDING, AckStatus.SENT)


def first_ack(session: Session, submission_id: int) -> Ack | None:
    """The automatic acknowledgement (sequence 0) of a submission, if decided."""
    return session.scalar(select(Ack).where(Ack.submission_id == submission_id, Ack.sequence == 0))


def has_ack(session: Session, submission_id: int) -> bool:
    """Whether a submission has any acknowledgement row (sent, pending or suppressed)."""
    found = session.scalar(select(Ack.id).where(Ack.submission_id == submission_id).limit(1))
    return found is not None


def recent_acks_to(session: Session, to_addr: str, since: dt.datetime) -> int:
    """How many acknowledgements to ``to_addr`` were queued or sent since ``since``."""
    count = session.scalar(
        select(func.count())
        .select_from(Ack)
        .where(Ack.to_addr == to_addr, Ack.created_at >= since, Ack.status.in_(_COUNTED))
    )
    return count or 0


def last_sequence(session: Session, submission_id: int) -> int | None:
    """The highest copy number of a submission's acknowledgements, None without any."""
    return session.scalar(select(func.max(Ack.sequence)).where(Ack.submission_id == submission_id))


def ack_for_message_ids(session: Session, message_ids: Sequence[str]) -> Ack | None:
    """One of our acknowledgements whose Message-ID is among ``message_ids``."""
    if not message_ids:
        return None
    return session.scalar(select(Ack).where(Ack.message_id.in_(list(message_ids))).limit(1))


def acks_with_references(
    session: Session, statuses: Sequence[str] = ()
) -> Iterator[tuple[Ack, str | None]]:
    """Acknowledgements (only those in ``statuses`` when given) with their reference."""
    for row in session.execute(select_acks(statuses)):
        yield row[0], row[1]
