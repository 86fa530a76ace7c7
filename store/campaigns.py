"""Campaigns, their members, revised versions and the LSH band keys behind them.

Detection results (members, roles, band keys, version links) are derived data: a
recompute rewrites them. Staff decisions are kept apart, as *pins* (this response
belongs to that campaign, or to none) and as the campaign's own name and confirmation,
so a recompute never undoes them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    delete,
    func,
    select,
    text,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from .erasure import register_eraser
from .models import Base, Submission, SubmissionKind, UTCDateTime
from .responses import ARRIVAL, SubmissionVersion, TextBand, texts

__all__ = [
    "Campaign",
    "CampaignMember",
    "CampaignPin",
    "HonestCounts",
    "honest_counts",
    "lock_campaigns",
    "member_roles",
    "own_words",
    "own_words_many",
    "text_for_tagging",
]

_NAME_MAX = 200


# The PostgreSQL advisory lock that campaign and version writers take in turn.
_CAMPAIGN_LOCK = 74823002


def lock_campaigns(session: Session) -> None:
    """Wait for, and hold until this transaction ends, the right to change campaigns
    and version links.

    PostgreSQL: a transaction advisory lock. Two processes' campaign stages, or the
    stage and a recompute or a staff decision, then take turns, and each reads what
    the other committed before it writes: without it, two of them could each link
    the same earlier response to the same later one, and one would fail on the
    primary key. SQLite needs none: it lets one writer in at a time already.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CAMPAIGN_LOCK})


class Campaign(Base):
    """A template letter sent by several people; named and confirmed by staff."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(_NAME_MAX))
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    template_submission_id: Mapped[int | None] = mapped_column(
        ForeignKey("submissions.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class CampaignMember(Base):
    """A response's place in a campaign, as the last recompute found it."""

    __tablename__ = "campaign_members"

    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True
    )
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(30))
    containment: Mapped[float] = mapped_column(Float)
    additions: Mapped[str | None] = mapped_column(Text)


class CampaignPin(Base):
    """Staff said where a response belongs: a campaign, or none (``campaign_id`` null)."""

    __tablename__ = "campaign_pins"

    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), primary_key=True
    )
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    pinned_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


# --- campaigns and members ---------------------------------------------------------------


@dataclass(frozen=True)
class MemberRow:
    submission_id: int
    role: str
    containment: float
    additions: str | None


def memberships(session: Session, ids: Iterable[int] | None = None) -> dict[int, int]:
    """Response id -> campaign id, for ``ids`` (None: every member)."""
    query = select(CampaignMember.submission_id, CampaignMember.campaign_id)
    rows: dict[int, int] = {}
    if ids is None:
        return {sid: cid for sid, cid in session.execute(query)}
    wanted = list(ids)
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows.update(
            {
                sid: cid
                for sid, cid in session.execute(
                    query.where(CampaignMember.submission_id.in_(chunk))
                )
            }
        )
    return rows


def members_of(session: Session, campaign_ids: Iterable[int]) -> set[int]:
    wanted = list(campaign_ids)
    members = set(
        session.scalars(
            select(CampaignMember.submission_id).where(CampaignMember.campaign_id.in_(wanted))
        )
    )
    pinned = session.scalars(
        select(CampaignPin.submission_id).where(CampaignPin.campaign_id.in_(wanted))
    )
    return members | set(pinned)


def pins(session: Session, ids: Iterable[int] | None = None) -> dict[int, int | None]:
    query = select(CampaignPin.submission_id, CampaignPin.campaign_id)
    if ids is not None:
        query = query.where(CampaignPin.submission_id.in_(list(ids)))
    return {sid: cid for sid, cid in session.execute(query)}


def pin(session: Session, ids: Iterable[int], campaign_id: int | None, now: dt.datetime) -> None:
    """Staff put these responses in a campaign (or, with None, in none)."""
    for sid in ids:
        found = session.get(CampaignPin, sid)
        if found is None:
            session.add(CampaignPin(submission_id=sid, campaign_id=campaign_id, pinned_at=now))
        else:
            found.campaign_id, found.pinned_at = campaign_id, now
    session.flush()


def new_campaign(session: Session, now: dt.datetime, name: str | None = None) -> Campaign:
    campaign = Campaign(name=_clean(name), confirmed=False, created_at=now, updated_at=now)
    session.add(campaign)
    session.flush()
    return campaign


def _clean(name: str | None) -> str | None:
    if name is None:
        return None
    return name.replace("\x00", "").strip()[:_NAME_MAX] or None


def rename(campaign: Campaign, name: str, now: dt.datetime) -> None:
    campaign.name, campaign.updated_at = _clean(name), now


def write_campaign(
    session: Session,
    campaign: Campaign,
    template_id: int,
    members: dict[int, MemberRow],
    now: dt.datetime,
) -> None:
    """Set a campaign's template and members (their old rows are already deleted)."""
    campaign.template_submission_id = template_id
    campaign.updated_at = now
    session.add_all(
        CampaignMember(
            submission_id=m.submission_id,
            campaign_id=campaign.id,
            role=m.role,
            containment=m.containment,
            additions=m.additions.replace("\x00", "") if m.additions else None,
        )
        for m in members.values()
    )


def clear_members(session: Session, ids: Sequence[int] | None) -> None:
    if ids is None:
        session.execute(delete(CampaignMember))
        return
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        session.execute(delete(CampaignMember).where(CampaignMember.submission_id.in_(chunk)))


def drop_empty(session: Session) -> int:
    """Delete campaigns left with no member and no pin; returns how many."""
    used = select(CampaignMember.campaign_id).union(
        select(CampaignPin.campaign_id).where(CampaignPin.campaign_id.is_not(None))
    )
    result = session.execute(delete(Campaign).where(Campaign.id.not_in(used)))
    return int(getattr(result, "rowcount", 0) or 0)


def campaigns(session: Session) -> list[Campaign]:
    return list(session.scalars(select(Campaign).order_by(Campaign.id)))


def campaign_members(session: Session, campaign_id: int) -> list[tuple[CampaignMember, Any]]:
    """A campaign's members with their reference, sender and arrival, template first."""
    query = (
        select(
            CampaignMember,
            Submission.reference,
            Submission.sender_email,
            Submission.received_at,
        )
        .join(Submission, Submission.id == CampaignMember.submission_id)
        .where(CampaignMember.campaign_id == campaign_id)
        .order_by(*ARRIVAL)
    )
    return [(row[0], row[1:]) for row in session.execute(query)]


def membership_of(session: Session, submission_id: int) -> tuple[CampaignMember, Campaign] | None:
    member = session.get(CampaignMember, submission_id)
    if member is None:
        return None
    campaign = session.get(Campaign, member.campaign_id)
    return (member, campaign) if campaign is not None else None


def sizes(session: Session, campaign_ids: Iterable[int] | None = None) -> dict[int, int]:
    query = select(CampaignMember.campaign_id, func.count()).group_by(CampaignMember.campaign_id)
    if campaign_ids is not None:
        query = query.where(CampaignMember.campaign_id.in_(list(campaign_ids)))
    rows = session.execute(query)
    return {cid: int(n) for cid, n in rows}


def references(session: Session, ids: Iterable[int]) -> dict[int, str | None]:
    wanted = list(ids)
    return {
        sid: ref
        for sid, ref in session.execute(
            select(Submission.id, Submission.reference).where(Submission.id.in_(wanted))
        )
    }


def forget(session: Session, submission_id: int) -> None:
    """Take a response out of campaigns, versions and the band index (not a response now)."""
    for table, column in (
        (TextBand, TextBand.submission_id),
        (CampaignMember, CampaignMember.submission_id),
        (SubmissionVersion, SubmissionVersion.earlier_id),
        (SubmissionVersion, SubmissionVersion.later_id),
    ):
        session.execute(delete(table).where(column == submission_id))
    session.flush()


# --- counts and export ------------------------------------------------------------------


@dataclass(frozen=True)
class HonestCounts:
    """What "how many responses" means once copies and revised versions are known."""

    received: int  # every response stored
    superseded: int  # earlier versions replaced by a later one from the same sender
    campaign_copies: int  # responses in a campaign (template included)
    campaigns: int  # campaigns with at least one member
    with_own_text: int  # copies with text of their own added
    unconfirmed_partial: int  # quote part of a template; counted as independent until confirmed

    @property
    def independent(self) -> int:
        return self.received - self.superseded - self.campaign_copies

    @property
    def unique(self) -> int:
        """Distinct responses to read: each independent one, and each campaign's text once."""
        return self.independent + self.campaigns

    def line(self) -> str:
        return (
            f"received {self.received}; unique responses {self.unique} "
            f"({self.independent} independent + {self.campaigns} campaign text(s)); "
            f"campaign copies {self.campaign_copies} in {self.campaigns} campaign(s), "
            f"{self.with_own_text} with their own text; superseded versions {self.superseded}"
        )


def honest_counts(session: Session) -> HonestCounts:
    response = Submission.kind == SubmissionKind.RESPONSE
    received = session.scalar(select(func.count()).select_from(Submission).where(response)) or 0
    superseded = (
        session.scalar(
            select(func.count())
            .select_from(SubmissionVersion)
            .join(Submission, Submission.id == SubmissionVersion.earlier_id)
            .where(response)
        )
        or 0
    )
    rows = session.execute(
        select(CampaignMember.campaign_id, CampaignMember.role, Campaign.confirmed, func.count())
        .join(Campaign, Campaign.id == CampaignMember.campaign_id)
        .group_by(CampaignMember.campaign_id, CampaignMember.role, Campaign.confirmed)
    )
    copies = own = partial = 0
    counted: set[int] = set()
    for cid, role, confirmed, n in rows:
        if role == "partial" and not confirmed:
            partial += n
            continue
        copies += n
        counted.add(cid)
        if role == "copy_with_additions":
            own += n
    return HonestCounts(received, superseded, copies, len(counted), own, partial)


def export_maps(
    session: Session,
) -> tuple[dict[int, dict[str, Any]], dict[int, str | None], dict[int, str | None]]:
    """For the JSONL export: response id -> campaign record, supersedes, superseded_by."""
    size = sizes(session)
    campaign: dict[int, dict[str, Any]] = {}
    for m in session.scalars(select(CampaignMember)):
        campaign[m.submission_id] = {
            "id": m.campaign_id,
            "role": m.role,
            "containment": m.containment,
            "size": size.get(m.campaign_id, 0),
            "additions": m.additions,
        }
    links = list(session.execute(select(SubmissionVersion.earlier_id, SubmissionVersion.later_id)))
    ref = references(session, {i for link in links for i in link})
    supersedes = {later: ref.get(earlier) for earlier, later in links}
    superseded_by = {earlier: ref.get(later) for earlier, later in links}
    return campaign, supersedes, superseded_by


def member_tags(session: Session) -> dict[int, tuple[int, str]]:
    """Response id -> (campaign id, role), for ``intake list``."""
    query = select(CampaignMember.submission_id, CampaignMember.campaign_id, CampaignMember.role)
    return {sid: (cid, role) for sid, cid, role in session.execute(query)}


def not_superseded() -> Any:
    """A condition on Submission: not replaced by a later version."""
    return Submission.id.not_in(select(SubmissionVersion.earlier_id))


def own_words(session: Session, submission_id: int) -> tuple[str, str | None]:
    """How much of a response is its own, for the stages that read it for meaning.

    ``("none", None)``: a plain copy of a campaign's template, or a version a later one
    replaced (count it, do not tag it again); ``("additions", text)``: a copy with
    additions, whose own words are ``text``; ``("all", None)``: everything else.
    """
    return own_words_many(session, [submission_id])[submission_id]


def own_words_many(session: Session, ids: Sequence[int]) -> dict[int, tuple[str, str | None]]:
    """:func:`own_words` of each of ``ids``, with two queries per 500 of them."""
    superseded: set[int] = set()
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        query = select(SubmissionVersion.earlier_id).where(SubmissionVersion.earlier_id.in_(chunk))
        superseded.update(session.scalars(query))
    roles = member_roles(session, ids)
    found: dict[int, tuple[str, str | None]] = {}
    for submission_id in ids:
        role, additions = roles.get(submission_id, ("", None))
        if submission_id in superseded or role == "copy":
            found[submission_id] = ("none", None)
        elif role == "copy_with_additions":
            found[submission_id] = ("additions", additions or "")
        else:
            found[submission_id] = ("all", None)
    return found


def text_for_tagging(session: Session, submission_id: int) -> str | None:
    """What later stages (search, question tagging) should read of a response.

    A plain copy has nothing of its own (None: count it, do not tag it again); a copy
    with additions contributes its own passages; the template and every other
    response, their whole text. A superseded version is not read again (None).
    """
    scope, additions = own_words(session, submission_id)
    if scope == "none":
        return None
    if scope == "additions":
        return additions
    return texts(session, [submission_id]).get(submission_id)


def member_roles(session: Session, ids: Sequence[int]) -> dict[int, tuple[str, str | None]]:
    """Response id -> (role, its additions) for the campaign members among ``ids``."""
    found: dict[int, tuple[str, str | None]] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        query = select(
            CampaignMember.submission_id, CampaignMember.role, CampaignMember.additions
        ).where(CampaignMember.submission_id.in_(chunk))
        found.update({sid: (role, additions) for sid, role, additions in session.execute(query)})
    return found


@register_eraser("campaign_members")
def _erase_campaign_links(session: Session, ids: Sequence[int], anonymise: bool) -> int:
    """A purged response leaves its campaign (its own text is kept in its membership),
    its version links and the band index; the campaign's counts follow at the next recompute."""
    for submission_id in ids:
        forget(session, submission_id)
    chunk = list(ids)
    session.execute(delete(CampaignPin).where(CampaignPin.submission_id.in_(chunk)))
    return len(chunk)
