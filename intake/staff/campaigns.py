"""Campaigns for staff: list them, see a response's campaign and versions, decide.

Decisions -- confirm, split, merge, name -- are written as pins and on the campaign
itself, audited, and survive every recompute.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from store import campaigns as store
from store import repo, responses
from store.campaigns import Campaign
from store.errors import NotFound
from store.models import Submission

from ..analysis.versions import version_diff
from ..config import CampaignSettings
from ..deadline import format_uk
from ..stages.cluster import refresh

__all__ = [
    "CampaignListing",
    "campaign_lines",
    "ResponseCampaign",
    "confirm",
    "list_campaigns",
    "merge",
    "name",
    "response_campaign",
    "split",
]

_FIRST_LINES = 3


@dataclass(frozen=True)
class ListedMember:
    reference: str | None
    role: str
    containment: float
    sender: str | None
    received_uk: str | None
    additions: str | None


@dataclass(frozen=True)
class CampaignListing:
    id: int
    name: str | None
    confirmed: bool
    size: int
    roles: dict[str, int]
    template_reference: str | None
    template_lines: list[str]
    members: list[ListedMember] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "confirmed": self.confirmed,
            "size": self.size,
            "roles": self.roles,
            "template": self.template_reference,
            "template_first_lines": self.template_lines,
            "members": [
                {
                    "reference": m.reference,
                    "role": m.role,
                    "containment": m.containment,
                    "sender_email": m.sender,
                    "received_at_uk": m.received_uk,
                    "additions": m.additions,
                }
                for m in self.members
            ],
        }


def _first_lines(text: str, count: int = _FIRST_LINES) -> list[str]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return [line[:200] for line in lines[:count]]


def list_campaigns(session: Session) -> list[CampaignListing]:
    """Every campaign, largest first, with its template's first lines and its members."""
    found = []
    for campaign in store.campaigns(session):
        members = store.campaign_members(session, campaign.id)
        template_text = ""
        if campaign.template_submission_id is not None:
            template_text = responses.texts(session, [campaign.template_submission_id]).get(
                campaign.template_submission_id, ""
            )
        refs = store.references(session, [campaign.template_submission_id or 0])
        found.append(
            CampaignListing(
                id=campaign.id,
                name=campaign.name,
                confirmed=campaign.confirmed,
                size=len(members),
                roles=dict(Counter(m.role for m, _ in members)),
                template_reference=refs.get(campaign.template_submission_id or 0),
                template_lines=_first_lines(template_text),
                members=[
                    ListedMember(
                        reference=ref,
                        role=m.role,
                        containment=m.containment,
                        sender=sender,
                        received_uk=format_uk(received) if received else None,
                        additions=m.additions,
                    )
                    for m, (ref, sender, received) in members
                ],
            )
        )
    found.sort(key=lambda c: (-c.size, c.id))
    return found


def _campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign has the id {campaign_id}; see `intake campaigns`")
    return campaign


def confirm(session: Session, campaign_id: int, now: dt.datetime) -> int:
    """Staff checked the campaign: its members (partials too) stay, and partials count."""
    campaign = _campaign(session, campaign_id)
    ids = sorted(store.members_of(session, [campaign_id]))
    store.pin(session, ids, campaign_id, now)
    campaign.confirmed, campaign.updated_at = True, now
    repo.audit(session, "campaign-confirm", None, f"campaign {campaign_id}: {len(ids)}", now)
    return len(ids)


def name(session: Session, campaign_id: int, new_name: str, now: dt.datetime) -> None:
    campaign = _campaign(session, campaign_id)
    before = campaign.name
    store.rename(campaign, new_name, now)
    repo.audit(
        session, "campaign-name", None, f"campaign {campaign_id}: {before!r} -> {new_name!r}", now
    )


def merge(
    session: Session,
    settings: CampaignSettings,
    target: int,
    others: Sequence[int],
    now: dt.datetime,
) -> int:
    """Put the members of ``others`` into ``target``; returns the target's new size."""
    campaign = _campaign(session, target)
    others = [o for o in dict.fromkeys(others) if o != target]
    for other in others:
        _campaign(session, other)
    moved = sorted(store.members_of(session, [target, *others]))
    store.pin(session, moved, target, now)
    for other in others:
        session.delete(_campaign(session, other))
    session.flush()
    campaign.confirmed, campaign.updated_at = True, now
    refresh(session, settings, now, [target])
    repo.audit(session, "campaign-merge", None, f"campaigns {others} into {target}", now)
    return len(store.members_of(session, [target]))


def split(
    session: Session,
    settings: CampaignSettings,
    campaign_id: int,
    references: Sequence[str],
    now: dt.datetime,
    *,
    alone: bool = False,
) -> int | None:
    """Move responses out of a campaign: into a new one, or (``alone``) into none."""
    _campaign(session, campaign_id)
    members = store.members_of(session, [campaign_id])
    ids = []
    for reference in references:
        sub = repo.get_by_reference(session, reference)
        if sub.id not in members:
            raise NotFound(f"{sub.reference} is not in campaign {campaign_id}")
        ids.append(sub.id)
    new_id = None
    if alone:
        store.pin(session, ids, None, now)
    else:
        new = store.new_campaign(session, now)
        new.confirmed = True
        new_id = new.id
        store.pin(session, ids, new.id, now)
    rest = sorted(members - set(ids))
    store.pin(session, rest, campaign_id, now)
    refresh(session, settings, now, [campaign_id] + ([new_id] if new_id else []))
    detail = f"campaign {campaign_id}: {', '.join(references)} -> " + (
        f"campaign {new_id}" if new_id else "no campaign"
    )
    repo.audit(session, "campaign-split", None, detail, now)
    return new_id


@dataclass(frozen=True)
class ResponseCampaign:
    """What ``intake show`` adds: the response's campaign and its versions."""

    campaign: dict[str, Any] | None
    supersedes: str | None
    superseded_by: str | None
    diff: str | None  # from this version to the one that replaced it


def response_campaign(session: Session, submission: Submission) -> ResponseCampaign:
    found = store.membership_of(session, submission.id)
    campaign = None
    if found is not None:
        member, camp = found
        refs = store.references(session, [camp.template_submission_id or 0])
        campaign = {
            "id": camp.id,
            "name": camp.name,
            "confirmed": camp.confirmed,
            "role": member.role,
            "containment": member.containment,
            "size": store.sizes(session, [camp.id]).get(camp.id, 0),
            "template": refs.get(camp.template_submission_id or 0),
            "additions": member.additions,
        }
    supersedes, superseded_by = responses.version_of(session, submission.id)
    refs = store.references(
        session,
        [link.earlier_id for link in [supersedes] if link]
        + [link.later_id for link in [superseded_by] if link],
    )
    diff = None
    if superseded_by is not None:
        texts = responses.texts(session, [submission.id, superseded_by.later_id])
        diff = version_diff(
            texts.get(submission.id, ""),
            texts.get(superseded_by.later_id, ""),
            submission.reference or "",
            refs.get(superseded_by.later_id) or "",
        )
    return ResponseCampaign(
        campaign=campaign,
        supersedes=refs.get(supersedes.earlier_id) if supersedes else None,
        superseded_by=refs.get(superseded_by.later_id) if superseded_by else None,
        diff=diff,
    )


def campaign_lines(found: ResponseCampaign) -> list[str]:
    """The lines ``intake show`` adds about campaigns and versions."""
    lines = []
    c = found.campaign
    if c is not None:
        label = f"{c['id']}" + (f" ({c['name']})" if c["name"] else "")
        state = "confirmed" if c["confirmed"] else "not yet confirmed"
        lines.append(
            f"Campaign:   {label}, {c['size']} responses, {state}; this one is "
            f"{c['role'].replace('_', ' ')}, holding {c['containment']:.0%} of the template "
            f"{c['template'] or '-'}"
        )
        if c["additions"]:
            lines.append("Own text:   " + c["additions"].replace("\n", "\n            "))
    if found.supersedes:
        lines.append(f"Supersedes: {found.supersedes} (an earlier version from the same sender)")
    if found.superseded_by:
        lines.append(
            f"Superseded: by {found.superseded_by}, which is the version counted; "
            "the changes are below"
        )
    return lines
