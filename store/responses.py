"""Responses as the campaign and version detectors read them.

Their texts (body plus readable attachments), the LSH band keys of their MinHash
(stored, so a new response finds its candidates with one indexed query) and the links
between revised versions. All of it is derived data, rewritten by a recompute.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Table,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from .models import Attachment, Base, Submission, SubmissionKind, SubmissionStatus

__all__ = [
    "ARRIVAL",
    "ResponseRow",
    "SubmissionVersion",
    "TextBand",
    "band_candidates",
    "band_holders",
    "is_response",
    "iter_texts",
    "replace_all_bands",
    "replace_bands",
    "replace_bands_of",
    "replace_versions",
    "response_rows",
    "same_sender_or_domain",
    "senders_among",
    "superseded_ids",
    "texts",
    "version_of",
]


class SubmissionVersion(Base):
    """``later`` supersedes ``earlier`` (same sender or organisation)."""

    __tablename__ = "submission_versions"

    earlier_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True
    )
    later_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), index=True
    )
    reason: Mapped[str] = mapped_column(String(20))


class TextBand(Base):
    """One LSH band key of a response's MinHash: equal keys make two texts candidates."""

    __tablename__ = "text_bands"
    __table_args__ = (Index("ix_text_bands_band_key", "band_key"),)

    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True
    )
    band: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    band_key: Mapped[int] = mapped_column(BigInteger)


_TEXT_BANDS = cast(Table, TextBand.__table__)


# --- reading responses -------------------------------------------------------------------

_RESPONSE = (Submission.kind == SubmissionKind.RESPONSE) & (
    Submission.status == SubmissionStatus.PARSED
)
ARRIVAL = (func.coalesce(Submission.received_at, Submission.fetched_at), Submission.id)


@dataclass(frozen=True)
class ResponseRow:
    id: int
    reference: str | None
    sender_email: str | None


def is_response(session: Session, submission_id: int) -> bool:
    return (
        session.scalar(select(Submission.id).where(Submission.id == submission_id, _RESPONSE))
        is not None
    )


def response_rows(session: Session, ids: Iterable[int] | None = None) -> list[ResponseRow]:
    """Readable responses (all, or those of ``ids``), in arrival order."""
    query = select(Submission.id, Submission.reference, Submission.sender_email).where(_RESPONSE)
    if ids is not None:
        query = query.where(Submission.id.in_(list(ids)))
    return [ResponseRow(*row) for row in session.execute(query.order_by(*ARRIVAL))]


def texts(session: Session, ids: Sequence[int]) -> dict[int, str]:
    """Body plus the text of every readable attachment, for each response of ``ids``."""
    found: dict[int, list[str]] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        for sid, body in session.execute(
            select(Submission.id, Submission.body_text).where(Submission.id.in_(chunk))
        ):
            found[sid] = [body or ""]
        for sid, text in session.execute(
            select(Attachment.submission_id, Attachment.text)
            .where(Attachment.submission_id.in_(chunk), Attachment.text.is_not(None))
            .order_by(Attachment.submission_id, Attachment.position)
        ):
            found.setdefault(sid, []).append(text or "")
    return {sid: "\n\n".join(part for part in parts if part) for sid, parts in found.items()}


def iter_texts(session: Session, ids: Sequence[int]) -> Iterator[tuple[int, str]]:
    """Texts of ``ids`` in that order, loaded 500 at a time (bounded memory)."""
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        loaded = texts(session, chunk)
        for sid in chunk:
            yield sid, loaded.get(sid, "")


def same_sender_or_domain(
    session: Session, submission_id: int, email: str, domain: str | None
) -> list[ResponseRow]:
    """Readable responses from the same address, or from the same domain when given."""
    cond = func.lower(Submission.sender_email) == email.lower()
    if domain:
        cond = or_(cond, func.lower(Submission.sender_email).like(f"%@{_escape(domain)}", "\\"))
    query = select(Submission.id, Submission.reference, Submission.sender_email).where(
        _RESPONSE, cond
    )
    rows = [ResponseRow(*row) for row in session.execute(query.order_by(*ARRIVAL))]
    if not any(row.id == submission_id for row in rows):
        rows += response_rows(session, [submission_id])
    return rows


def senders_among(
    session: Session, emails: Iterable[str], domains: Iterable[str]
) -> list[tuple[int, str]]:
    """(id, lower-cased address) of the readable responses from any of these addresses
    (given lower case) or at any of these domains: :func:`same_sender_or_domain`'s
    conditions for many senders at once, left to the caller to tell apart."""
    lowered = func.lower(Submission.sender_email)
    conditions: list[ColumnElement[bool]] = []
    wanted = sorted(set(emails))
    for start in range(0, len(wanted), 500):
        conditions.append(lowered.in_(wanted[start : start + 500]))
    places = sorted(set(domains))
    for start in range(0, len(places), 50):
        chunk = places[start : start + 50]
        conditions.append(or_(*(lowered.like(f"%@{_escape(d)}", "\\") for d in chunk)))
    found: dict[int, str] = {}
    for condition in conditions:
        query = select(Submission.id, lowered).where(_RESPONSE, condition)
        found.update({sid: address for sid, address in session.execute(query)})
    return sorted(found.items())


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- band keys ---------------------------------------------------------------------------


def replace_bands(session: Session, submission_id: int, keys: Sequence[int]) -> None:
    session.execute(delete(TextBand).where(TextBand.submission_id == submission_id))
    if keys:  # one executemany: no ORM objects for rows nothing reads back
        rows = [
            {"submission_id": submission_id, "band": b, "band_key": k} for b, k in enumerate(keys)
        ]
        session.execute(insert(TextBand), rows)


def replace_bands_of(
    session: Session, ids: Sequence[int], keys: Mapping[int, Sequence[int]]
) -> None:
    """Rewrite the band keys of ``ids`` at once: ``keys`` for those it holds, none for the rest."""
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        session.execute(delete(TextBand).where(TextBand.submission_id.in_(chunk)))
    rows = [
        {"submission_id": sid, "band": b, "band_key": k}
        for sid in ids
        for b, k in enumerate(keys.get(sid, ()))
    ]
    if rows:  # the table's own insert: a plain executemany, no ORM bookkeeping per row
        session.execute(insert(_TEXT_BANDS), rows)


def replace_all_bands(session: Session, rows: Iterable[tuple[int, Sequence[int]]]) -> None:
    """Rewrite every response's band keys (a bulk recompute), in batches."""
    session.execute(delete(TextBand))
    batch: list[dict[str, Any]] = []
    for sid, keys in rows:
        batch += [{"submission_id": sid, "band": b, "band_key": k} for b, k in enumerate(keys)]
        if len(batch) >= 20_000:
            session.execute(insert(TextBand), batch)
            batch = []
    if batch:
        session.execute(insert(TextBand), batch)


def band_candidates(session: Session, submission_id: int) -> set[int]:
    """Responses sharing at least one band key with this one."""
    mine = select(TextBand.band_key).where(TextBand.submission_id == submission_id)
    query = select(TextBand.submission_id).where(
        TextBand.band_key.in_(mine), TextBand.submission_id != submission_id
    )
    return set(session.scalars(query.distinct()))


def band_holders(session: Session, keys: Iterable[int]) -> dict[int, set[int]]:
    """Band key -> the responses holding it, for these keys (as stored now)."""
    wanted = sorted(set(keys))
    found: dict[int, set[int]] = {}
    query = select(TextBand.band_key, TextBand.submission_id).where(
        TextBand.band_key.in_(bindparam("keys", expanding=True))
    )
    for start in range(0, len(wanted), 500):
        for key, sid in session.execute(query, {"keys": wanted[start : start + 500]}):
            found.setdefault(key, set()).add(sid)
    return found


# --- versions ----------------------------------------------------------------------------


def replace_versions(
    session: Session, ids: Sequence[int], links: Iterable[tuple[int, int, str]]
) -> None:
    """Rewrite the version links among ``ids`` (None: all) to ``links`` (earlier, later, why)."""
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        session.execute(
            delete(SubmissionVersion).where(
                SubmissionVersion.earlier_id.in_(chunk) | SubmissionVersion.later_id.in_(chunk)
            )
        )
    session.add_all(SubmissionVersion(earlier_id=e, later_id=lt, reason=r) for e, lt, r in links)
    session.flush()


def superseded_ids(session: Session, among: Iterable[int] | None = None) -> set[int]:
    """Responses a later version replaced: all of them, or those ``among`` these ids."""
    query = select(SubmissionVersion.earlier_id)
    if among is None:
        return set(session.scalars(query))
    wanted = list(among)
    found: set[int] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(session.scalars(query.where(SubmissionVersion.earlier_id.in_(chunk))))
    return found


def version_of(
    session: Session, submission_id: int
) -> tuple[SubmissionVersion | None, SubmissionVersion | None]:
    """(the link to what it supersedes, the link to what supersedes it)."""
    supersedes = session.scalar(
        select(SubmissionVersion).where(SubmissionVersion.later_id == submission_id)
    )
    superseded_by = session.get(SubmissionVersion, submission_id)
    return supersedes, superseded_by
