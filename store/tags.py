"""Passages of responses, the questions they are tagged with, and respondent types.

The tagging stage writes here with ``source = "auto"``; staff decisions are rows
with ``source = "staff"`` and are never overwritten by a re-run: a passage whose
text is unchanged keeps its id (matched by where it came from and a hash of its
text), automatic tags are replaced only where no person has decided, and a
passage a person tagged is kept even when a re-run no longer produces it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    distinct,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from .erasure import register_eraser
from .errors import NotFound
from .models import Attachment, Base, Submission, SubmissionKind, SubmissionStatus, UTCDateTime

__all__ = [
    "AUTO",
    "STAFF",
    "AutoRun",
    "EvidenceRow",
    "NewPassage",
    "NewTag",
    "Passage",
    "PassageTag",
    "RespondentProfile",
    "ToTag",
    "delete_for",
    "evidence_count",
    "evidence_rows",
    "passages_of",
    "question_counts",
    "respondent_of",
    "respondents_of",
    "responses_to_tag",
    "save_auto",
    "save_auto_many",
    "set_respondent",
    "set_tag",
    "tags_by_submission",
    "type_counts",
]

AUTO = "auto"
STAFF = "staff"
TAGGED = "tagged"
REJECTED = "rejected"


class Passage(Base):
    """One quotable passage of a response: where it came from and its words."""

    __tablename__ = "passages"
    __table_args__ = (
        Index("ix_passages_submission_seq", "submission_id", "seq"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)  # order within the whole response, from 1
    source_name: Mapped[str] = mapped_column(String(500))  # "body" or the file name
    position: Mapped[int] = mapped_column(Integer)  # order within that source, from 0
    heading: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(20), default="paragraph")
    text: Mapped[str] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(String(64))
    current: Mapped[bool] = mapped_column(Boolean, default=True)


class PassageTag(Base):
    """A question a passage speaks to: set by the tagger (auto) or by a person (staff).

    A staff row with ``decision = "rejected"`` says the passage does NOT answer the
    question; it keeps the tagger from adding it again.
    """

    __tablename__ = "passage_tags"
    __table_args__ = (
        UniqueConstraint("passage_id", "question_key", name="uq_passage_tags_passage_question"),
        Index("ix_passage_tags_question_key", "question_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    passage_id: Mapped[int] = mapped_column(ForeignKey("passages.id", ondelete="CASCADE"))
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), index=True
    )
    question_key: Mapped[str] = mapped_column(String(40))
    score: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(10), default=AUTO)
    decision: Mapped[str] = mapped_column(String(10), default=TAGGED)
    set_by: Mapped[str | None] = mapped_column(String(200))
    set_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class RespondentProfile(Base):
    """Who a response is from: the respondent type and organisation, with their source."""

    __tablename__ = "respondents"
    __table_args__ = (Index("ix_respondents_type", "respondent_type"),)

    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True
    )
    respondent_type: Mapped[str] = mapped_column(String(30))
    type_source: Mapped[str] = mapped_column(String(10), default=AUTO)
    organisation: Mapped[str] = mapped_column(String(300), default="")
    organisation_source: Mapped[str] = mapped_column(String(10), default=AUTO)
    evidence: Mapped[str] = mapped_column(Text, default="[]")  # a JSON list of strings
    set_by: Mapped[str | None] = mapped_column(String(200))
    set_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class NewTag:
    """An automatic tag to store."""

    key: str
    score: float
    reason: str


@dataclass(frozen=True)
class NewPassage:
    """A passage the tagger produced, with its automatic tags."""

    where: str
    position: int
    text: str
    heading: str = ""
    kind: str = "paragraph"
    tags: tuple[NewTag, ...] = ()


def _clean(text: str, limit: int | None = None) -> str:
    # PostgreSQL refuses NUL characters in text; VARCHAR lengths are enforced there.
    text = text.replace("\x00", "")
    return text[:limit] if limit else text


def _hash(where: str, text: str) -> str:
    return hashlib.sha256(f"{where}\n{text}".encode()).hexdigest()


def save_auto(
    session: Session,
    submission_id: int,
    passages: Sequence[NewPassage],
    respondent: tuple[str, str, Sequence[str]] | None,
    now: dt.datetime,
) -> None:
    """Store one tagging run of a submission without touching what people decided.

    Args:
        passages: in response order.
        respondent: (type, organisation, evidence) from the classifier.
    """
    save_auto_many(session, [AutoRun(submission_id, tuple(passages), respondent)], now)


@dataclass(frozen=True)
class AutoRun:
    """One submission's tagging run: its passages in response order, and its respondent
    as (type, organisation, evidence), or None to leave the profile alone."""

    submission_id: int
    passages: tuple[NewPassage, ...]
    respondent: tuple[str, str, Sequence[str]] | None


@dataclass
class _Old:
    """A stored passage of a submission, as a re-run compares it."""

    id: int
    seq: int
    source_name: str
    position: int
    heading: str
    kind: str
    current: bool


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), 500):
        yield list(ids[start : start + 500])


def save_auto_many(session: Session, runs: Sequence[AutoRun], now: dt.datetime) -> None:
    """Store the tagging runs of several submissions (each once) at once, as
    :func:`save_auto` would one after another in the order given, with a few
    statements for all of them.

    A passage whose text is unchanged keeps its id and its tags by people (a text
    that appears twice is matched in order, each stored passage once); automatic
    tags are replaced except where a person decided; a passage no longer produced is
    deleted unless a person tagged it (then it is kept, not current, after the rest).
    """
    if not runs:
        return
    ids = [run.submission_id for run in runs]
    session.flush()
    old: dict[int, dict[str, list[_Old]]] = {sid: {} for sid in ids}
    staff: dict[int, set[tuple[int, str]]] = {sid: set() for sid in ids}
    has_auto: set[int] = set()
    for chunk in _chunks(ids):
        query = (
            select(
                Passage.submission_id,
                Passage.text_hash,
                Passage.id,
                Passage.seq,
                Passage.source_name,
                Passage.position,
                Passage.heading,
                Passage.kind,
                Passage.current,
            )
            .where(Passage.submission_id.in_(chunk))
            .order_by(Passage.submission_id, Passage.seq, Passage.id)
        )
        for sid, digest, pid, seq, where, position, heading, kind, current in session.execute(
            query
        ):
            row = _Old(pid, seq, where, position, heading, kind, current)
            old[sid].setdefault(digest, []).append(row)
        query_tags = select(
            PassageTag.submission_id, PassageTag.passage_id, PassageTag.question_key
        ).where(PassageTag.submission_id.in_(chunk), PassageTag.source == STAFF)
        for sid, passage_id, key in session.execute(query_tags):
            staff[sid].add((passage_id, key))
        query_auto = (
            select(PassageTag.submission_id)
            .where(PassageTag.submission_id.in_(chunk), PassageTag.source == AUTO)
            .distinct()
        )
        has_auto.update(session.scalars(query_auto))

    # Passages: match the unchanged ones by their hash (in order, each once), add the
    # new ones in response order, and note which old ones go or stay.
    matched: list[list[tuple[int | None, NewPassage]]] = []
    fresh: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    gone: list[int] = []
    for run in runs:
        sid = run.submission_id
        by_hash = old[sid]
        staff_passages = {passage_id for passage_id, _ in staff[sid]}
        placed: list[tuple[int | None, NewPassage]] = []
        for seq, new in enumerate(run.passages, start=1):
            where, text = _clean(new.where, 500), _clean(new.text)
            digest = _hash(where, text)
            values = {
                "seq": seq,
                "source_name": where,
                "position": new.position,
                "heading": _clean(new.heading),
                "kind": new.kind[:20],
                "current": True,
            }
            same = by_hash.get(digest)
            if same:
                row = same.pop(0)
                placed.append((row.id, new))
                if _differs(row, values):
                    changed.append({"id": row.id, **values})
            else:
                placed.append((None, new))
                fresh.append({"submission_id": sid, "text": text, "text_hash": digest, **values})
        for rows in by_hash.values():
            for row in rows:
                if row.id in staff_passages:
                    # A person tagged it: keep it, though no longer produced.
                    values = {
                        "seq": len(run.passages) + 1 + row.position,
                        "source_name": row.source_name,
                        "position": row.position,
                        "heading": row.heading,
                        "kind": row.kind,
                        "current": False,
                    }
                    if _differs(row, values):
                        changed.append({"id": row.id, **values})
                else:
                    gone.append(row.id)
        matched.append(placed)
    new_ids: list[int] = []
    if fresh:
        # The table, not the class: the ORM's bulk insert adds work per row for nothing.
        table = cast(Table, Passage.__table__)
        statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        new_ids = list(session.scalars(statement, fresh))
    if changed:
        session.execute(update(Passage), changed)

    # Tags: each submission's automatic ones are replaced in turn (deletes and inserts
    # in the order one run after another would make them: SQLite may reuse the highest
    # row id of a deleted row).
    pending: list[dict[str, Any]] = []
    fresh_ids = iter(new_ids)
    for run, placed in zip(runs, matched, strict=True):
        sid = run.submission_id
        if sid in has_auto:
            if pending:
                session.execute(insert(PassageTag), pending)
                pending = []
            session.execute(
                delete(PassageTag).where(PassageTag.submission_id == sid, PassageTag.source == AUTO)
            )
        decided = staff[sid]
        for known, new in placed:
            passage_id = next(fresh_ids) if known is None else known
            for tag in new.tags:
                if (passage_id, tag.key) in decided:
                    continue
                pending.append(
                    {
                        "passage_id": passage_id,
                        "submission_id": sid,
                        "question_key": tag.key[:40],
                        "score": tag.score,
                        "reason": _clean(tag.reason),
                        "source": AUTO,
                        "decision": TAGGED,
                        "set_by": None,
                        "set_at": now,
                    }
                )
    if pending:
        session.execute(insert(PassageTag), pending)
    for start in range(0, len(gone), 500):
        session.execute(delete(Passage).where(Passage.id.in_(gone[start : start + 500])))

    _save_respondents(session, [run for run in runs if run.respondent is not None], now)
    # Core statements bypass the identity map: what it holds of these tables is stale.
    for obj in list(session.identity_map.values()):
        if isinstance(obj, (Passage, PassageTag, RespondentProfile)):
            session.expire(obj)


def _differs(row: _Old, values: dict[str, Any]) -> bool:
    return any(getattr(row, name) != value for name, value in values.items())


def _save_respondents(session: Session, runs: Sequence[AutoRun], now: dt.datetime) -> None:
    """The classifier's respondent of each run, where no person has set it."""
    if not runs:
        return
    sources: dict[int, tuple[str, str]] = {}
    for chunk in _chunks([run.submission_id for run in runs]):
        query = select(
            RespondentProfile.submission_id,
            RespondentProfile.type_source,
            RespondentProfile.organisation_source,
        ).where(RespondentProfile.submission_id.in_(chunk))
        sources.update({sid: (kind, org) for sid, kind, org in session.execute(query)})
    added: list[dict[str, Any]] = []
    updated: list[dict[str, Any]] = []
    for run in runs:
        assert run.respondent is not None
        kind, organisation, evidence = run.respondent
        type_values = {
            "respondent_type": kind,
            "type_source": AUTO,
            "evidence": json.dumps([_clean(e) for e in evidence], ensure_ascii=False),
        }
        organisation_values = {
            "organisation": _clean(organisation, 300),
            "organisation_source": AUTO,
        }
        found = sources.get(run.submission_id)
        if found is None:
            added.append(
                {
                    "submission_id": run.submission_id,
                    **type_values,
                    **organisation_values,
                    "set_by": None,
                    "set_at": now,
                }
            )
            continue
        type_source, organisation_source = found
        if type_source == STAFF and organisation_source == STAFF:
            continue
        values: dict[str, Any] = {"submission_id": run.submission_id, "set_at": now}
        if type_source != STAFF:
            values.update(type_values)
        if organisation_source != STAFF:
            values.update(organisation_values)
        updated.append(values)
    if added:
        session.execute(insert(RespondentProfile), added)
    # One statement for each set of columns (staff may have set the type or the name).
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for values in updated:
        groups.setdefault(tuple(values), []).append(values)
    for group in groups.values():
        session.execute(update(RespondentProfile), group)


@dataclass(frozen=True)
class ToTag:
    """What tagging reads of one parsed response."""

    submission_id: int
    sender_email: str | None
    sender_name: str | None
    body_text: str | None
    files: tuple[tuple[str, str], ...]  # readable attachments: (file name, text), in order


def responses_to_tag(session: Session, ids: Sequence[int]) -> dict[int, ToTag]:
    """The parsed responses among ``ids``, with the text of each readable attachment;
    anything else (not read yet, failed, a bounce) is left out."""
    found: dict[int, ToTag] = {}
    for chunk in _chunks(ids):
        heads = select(
            Submission.id, Submission.sender_email, Submission.sender_name, Submission.body_text
        ).where(
            Submission.id.in_(chunk),
            Submission.kind == SubmissionKind.RESPONSE,
            Submission.status == SubmissionStatus.PARSED,
        )
        found_heads = session.execute(heads).all()
        files: dict[int, list[tuple[str, str]]] = {}
        if found_heads:
            readable = (
                select(Attachment.submission_id, Attachment.filename, Attachment.text)
                .where(
                    Attachment.submission_id.in_([head[0] for head in found_heads]),
                    Attachment.parse_status == "ok",
                    Attachment.text.is_not(None),
                    Attachment.text != "",
                )
                .order_by(Attachment.submission_id, Attachment.position)
            )
            for sid, filename, text in session.execute(readable):
                files.setdefault(sid, []).append((filename, text or ""))
        for sid, email, name, body in found_heads:
            found[sid] = ToTag(sid, email, name, body, tuple(files.get(sid, ())))
    return found


def passages_of(session: Session, submission_id: int) -> list[tuple[Passage, list[PassageTag]]]:
    """A submission's passages in order, each with its tags (rejected ones included)."""
    passages = list(
        session.scalars(
            select(Passage).where(Passage.submission_id == submission_id).order_by(Passage.seq)
        )
    )
    tags: dict[int, list[PassageTag]] = {}
    for tag in session.scalars(
        select(PassageTag)
        .where(PassageTag.submission_id == submission_id)
        .order_by(PassageTag.question_key)
    ):
        tags.setdefault(tag.passage_id, []).append(tag)
    return [(p, tags.get(p.id, [])) for p in passages]


def set_tag(
    session: Session,
    submission_id: int,
    seq: int,
    key: str,
    decision: str,
    who: str,
    now: dt.datetime,
) -> PassageTag:
    """Record a person's decision on one passage and question: ``tagged`` or ``rejected``.

    Raises:
        NotFound: the submission has no passage number ``seq``.
    """
    passage = session.scalar(
        select(Passage).where(Passage.submission_id == submission_id, Passage.seq == seq)
    )
    if passage is None:
        raise NotFound(f"no passage {seq} in this response; `intake tag REF` lists them")
    tag = session.scalar(
        select(PassageTag).where(
            PassageTag.passage_id == passage.id, PassageTag.question_key == key
        )
    )
    if tag is None:
        tag = PassageTag(
            passage_id=passage.id, submission_id=submission_id, question_key=key, reason=""
        )
        session.add(tag)
    tag.source, tag.decision = STAFF, decision
    tag.set_by, tag.set_at = who[:200], now
    session.flush()
    return tag


def set_respondent(
    session: Session,
    submission_id: int,
    now: dt.datetime,
    who: str,
    *,
    kind: str | None = None,
    organisation: str | None = None,
) -> RespondentProfile:
    """A person sets the respondent type and/or the organisation of a response."""
    profile = session.get(RespondentProfile, submission_id)
    if profile is None:
        profile = RespondentProfile(
            submission_id=submission_id, respondent_type="unknown", organisation="", set_at=now
        )
        session.add(profile)
    if kind is not None:
        profile.respondent_type, profile.type_source = kind, STAFF
    if organisation is not None:
        profile.organisation, profile.organisation_source = _clean(organisation, 300), STAFF
    profile.set_by, profile.set_at = who[:200], now
    session.flush()
    return profile


def respondent_of(session: Session, submission_id: int) -> RespondentProfile | None:
    return session.get(RespondentProfile, submission_id)


def respondents_of(session: Session, ids: Sequence[int]) -> dict[int, RespondentProfile]:
    found: dict[int, RespondentProfile] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        for profile in session.scalars(
            select(RespondentProfile).where(RespondentProfile.submission_id.in_(chunk))
        ):
            found[profile.submission_id] = profile
    return found


def tags_by_submission(
    session: Session, ids: Sequence[int]
) -> dict[int, list[tuple[Passage, PassageTag]]]:
    """The tagged (not rejected) passages of these submissions, by question then order."""
    found: dict[int, list[tuple[Passage, PassageTag]]] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        query = (
            select(Passage, PassageTag)
            .join(PassageTag, PassageTag.passage_id == Passage.id)
            .where(PassageTag.submission_id.in_(chunk), PassageTag.decision == TAGGED)
            .order_by(PassageTag.submission_id, PassageTag.question_key, Passage.seq)
        )
        for passage, tag in session.execute(query):
            found.setdefault(tag.submission_id, []).append((passage, tag))
    return found


@dataclass(frozen=True)
class EvidenceRow:
    """One tagged passage for an evidence pack or an export."""

    submission_id: int
    reference: str
    respondent_type: str
    organisation: str
    sender_name: str
    where: str
    seq: int
    heading: str
    text: str
    score: float | None
    source: str


def _evidence_filter(key: str) -> tuple[Any, ...]:
    return (
        PassageTag.question_key == key,
        PassageTag.decision == TAGGED,
        Submission.kind == SubmissionKind.RESPONSE,
    )


def evidence_count(session: Session, key: str) -> int:
    """How many passages :func:`evidence_rows` would give for question ``key``."""
    query = (
        select(func.count())
        .select_from(PassageTag)
        .join(Submission, Submission.id == PassageTag.submission_id)
        .where(*_evidence_filter(key))
    )
    return int(session.scalar(query) or 0)


def evidence_rows(
    session: Session, key: str, *, limit: int | None = None, offset: int = 0
) -> list[EvidenceRow]:
    """Every passage tagged with question ``key`` (staff rejections left out), in order;
    or one page of them."""
    query = (
        select(
            Submission.id,
            Submission.reference,
            Submission.sender_name,
            RespondentProfile.respondent_type,
            RespondentProfile.organisation,
            Passage.source_name,
            Passage.seq,
            Passage.heading,
            Passage.text,
            PassageTag.score,
            PassageTag.source,
        )
        .join(Passage, Passage.id == PassageTag.passage_id)
        .join(Submission, Submission.id == PassageTag.submission_id)
        .outerjoin(RespondentProfile, RespondentProfile.submission_id == Submission.id)
        .where(*_evidence_filter(key))
        .order_by(Submission.id, Passage.seq)
        .limit(limit)
        .offset(offset)
    )
    return [
        EvidenceRow(
            row[0],
            row[1] or "",
            row[3] or "unknown",
            row[4] or "",
            row[2] or "",
            row[5],
            row[6],
            row[7] or "",
            row[8],
            row[9],
            row[10],
        )
        for row in session.execute(query)
    ]


def question_counts(session: Session) -> dict[str, int]:
    """How many responses have at least one passage tagged with each question."""
    query = (
        select(PassageTag.question_key, func.count(distinct(PassageTag.submission_id)))
        .where(PassageTag.decision == TAGGED)
        .group_by(PassageTag.question_key)
    )
    return {key: count for key, count in session.execute(query)}


def type_counts(session: Session) -> dict[str, int]:
    """How many responses there are of each respondent type."""
    query = (
        select(RespondentProfile.respondent_type, func.count())
        .join(Submission, Submission.id == RespondentProfile.submission_id)
        .where(Submission.kind == SubmissionKind.RESPONSE)
        .group_by(RespondentProfile.respondent_type)
    )
    return {kind: count for kind, count in session.execute(query)}


def delete_for(session: Session, ids: Iterable[int]) -> None:
    """Delete the passages and tags of these submissions (their text is being purged)."""
    chunk = list(ids)
    session.execute(delete(PassageTag).where(PassageTag.submission_id.in_(chunk)))
    session.execute(delete(Passage).where(Passage.submission_id.in_(chunk)))


@register_eraser("passages")
def _erase_tags(session: Session, ids: Sequence[int], anonymise: bool) -> int:
    """Passages quote the response word for word; the profile may name its author."""
    chunk = list(ids)
    delete_for(session, chunk)
    result = session.execute(
        delete(RespondentProfile).where(RespondentProfile.submission_id.in_(chunk))
    )
    return len(chunk) + int(getattr(result, "rowcount", 0) or 0)
