"""The ``cluster`` stage: campaigns and revised versions, kept current as responses arrive.

For each new response (:func:`run_many`, a batch at a time): its LSH band keys are
stored, its sender's (or organisation's) earlier responses are checked for versions,
and the campaigns around it -- the responses sharing a band key with it and every
member of their campaigns -- are regrouped and described again, so a campaign's
template and roles follow what has arrived. :func:`recompute_all` does the same over
every stored response at once (``intake campaigns recompute``). Staff decisions (pins)
are applied on top each time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from store import campaigns as store
from store import responses, work
from store.campaigns import Campaign, MemberRow

from ..analysis.campaigns import (
    CampaignParams,
    CampaignView,
    Role,
    describe,
    find_groups,
    role_of,
    settle,
)
from ..analysis.text import Fingerprint, band_keys, fingerprint, signature
from ..analysis.versions import (
    VersionDoc,
    compared,
    find_versions,
    link_for,
    organisation_of,
    says_it_replaces,
)
from ..config import CampaignSettings

if TYPE_CHECKING:
    from ..context import AppContext

__all__ = [
    "RecomputeSummary",
    "params_of",
    "recompute_all",
    "refresh",
    "run_many",
]


def params_of(settings: CampaignSettings) -> CampaignParams:
    return CampaignParams(
        shingle_words=settings.shingle_words,
        link_containment=settings.link_containment,
        copy_containment=settings.copy_containment,
        partial_containment=settings.partial_containment,
        min_members=settings.min_members,
        own_text_min_words=settings.own_text_min_words,
    )


def run_many(app: AppContext, session: Session, ids: Sequence[int]) -> None:
    """Bring campaigns and versions up to date for (new or re-read) submissions, as
    one at a time in ascending order would; the stage registry calls it only with
    ``[campaigns] enabled``.

    The batch's texts, band keys, senders, pins and memberships are read at once and
    every band row written in one statement. A response with nothing near it (no band
    candidate, no other response from its sender or organisation, in no campaign and
    not pinned) needs nothing else; the others go through :func:`_arrive` in order,
    each given the band candidates it would have found one at a time: the new keys of
    the batch's responses before it, the stored keys of those after it.
    """
    store.lock_campaigns(session)  # before reading: what another process wrote is seen
    settings = app.settings.campaigns
    params = params_of(settings)
    order = sorted(set(ids))
    rows = {row.id: row for row in responses.response_rows(session, order)}
    texts = responses.texts(session, sorted(rows))
    fps = {sid: fingerprint(texts.get(sid, ""), params.shingle_words) for sid in rows}
    keys = {sid: _keys(fp, params) for sid, fp in fps.items()}
    stored = responses.band_holders(session, {k for found in keys.values() for k in found})
    responses.replace_bands_of(session, order, keys)
    family = _with_family(session, list(rows.values()), settings)
    pinned = set(store.pins(session, order))
    members = set(store.memberships(session, order))
    batch = set(order)
    holders: dict[int, set[int]] = {}  # new band key -> the batch's responses so far
    drop_pending = worked = stale = False
    for n, sid in enumerate(order):
        if sid not in rows:
            store.forget(session, sid)
            continue
        candidates: set[int] = set()
        for key in keys[sid]:
            candidates.update(j for j in stored.get(key, ()) if j not in batch or j > sid)
            candidates.update(holders.get(key, ()))
        for key in keys[sid]:
            holders.setdefault(key, set()).add(sid)
        if not candidates and sid not in family and sid not in pinned:
            if stale:  # a regroup since may have placed the rest: read them again
                members, stale = set(store.memberships(session, order[n:])), False
            if sid not in members:
                drop_pending = True  # removing campaigns left empty: once, before it matters
                continue
        if worked:  # as the runner does between submissions: nothing stale is held
            session.expunge_all()
        if drop_pending:
            store.drop_empty(session)
            drop_pending = False
        _arrive(app, session, sid, texts.get(sid, ""), fps[sid], candidates, settings, params)
        session.flush()
        worked = stale = True
    if drop_pending:
        store.drop_empty(session)


def _with_family(
    session: Session, rows: Sequence[responses.ResponseRow], settings: CampaignSettings
) -> set[int]:
    """The responses among ``rows`` that another response shares a sender or organisation
    with (or that cannot be told apart cheaply: an address not in ASCII)."""
    public = settings.public_mail_domains
    wanted = {
        row.id: (row.sender_email.lower(), organisation_of(row.sender_email, public))
        for row in rows
        if row.sender_email
    }
    unsure = {sid for sid, (email, _) in wanted.items() if not email.isascii()}
    emails = {email for email, _ in wanted.values()}
    domains = {org for _, org in wanted.values() if org}
    found = responses.senders_among(session, emails, domains)
    by_address: dict[str, set[int]] = {}
    for sid, address in found:
        by_address.setdefault(address, set()).add(sid)
    at_domain = {
        org: {sid for sid, address in found if address.endswith("@" + org)} for org in domains
    }
    shared = set(unsure)
    for sid, (email, org) in wanted.items():
        same = by_address.get(email, set()) | (at_domain[org] if org else set())
        if same - {sid}:
            shared.add(sid)
    return shared


def _arrive(
    app: AppContext,
    session: Session,
    submission_id: int,
    text: str,
    fp: Fingerprint,
    candidates: set[int],
    settings: CampaignSettings,
    params: CampaignParams,
) -> None:
    """One response (its band keys stored) among its family and the campaigns near it."""
    family, relinked = _update_versions(session, submission_id, settings, app.now())
    if not candidates and family <= {submission_id} and _alone(session, submission_id):
        # Nothing near it and in no campaign: regrouping it on its own would find no
        # group (a campaign has at least two members) and change nothing but the
        # removal of campaigns left empty, done here as there.
        store.drop_empty(session)
        return
    if family <= {submission_id} and _join_quickly(
        session, submission_id, fp, text, candidates, params, app.now()
    ):
        return
    # The family members whose superseded state did not change are as they were: only
    # those that did (and what is near this response) can move between campaigns.
    near = candidates | {submission_id} | relinked
    campaigns = set(store.memberships(session, near).values())
    campaigns |= {cid for cid in store.pins(session, near).values() if cid is not None}
    scope = sorted(near | store.members_of(session, campaigns))
    _regroup(session, scope, params, app.now(), responses.superseded_ids(session, scope))


def _alone(session: Session, submission_id: int) -> bool:
    """In no campaign, and not placed (or kept out) by staff."""
    return not store.memberships(session, [submission_id]) and not store.pins(
        session, [submission_id]
    )


def _milestone(size: int) -> bool:
    """Sizes at which a growing campaign is regrouped and its template chosen again."""
    return size <= 8 or size & (size - 1) == 0


def _join_quickly(
    session: Session,
    submission_id: int,
    fp: Fingerprint,
    text: str,
    candidates: set[int],
    params: CampaignParams,
    now: dt.datetime,
) -> bool:
    """A plain copy of one campaign's template joins it without regrouping the campaign.

    The campaign is regrouped in full (template chosen again) when its size reaches a
    milestone, and by ``intake campaigns recompute``; this keeps each arrival cheap
    when a campaign has thousands of members.
    """
    if store.memberships(session, [submission_id]) or store.pins(session, [submission_id]):
        return False
    campaigns = set(store.memberships(session, candidates).values())
    if len(campaigns) != 1:
        return False
    campaign = session.get(Campaign, campaigns.pop())
    if campaign is None or campaign.template_submission_id is None:
        return False
    size = store.sizes(session, [campaign.id]).get(campaign.id, 0)
    if _milestone(size + 1):
        return False
    template_id = campaign.template_submission_id
    template = fingerprint(
        responses.texts(session, [template_id]).get(template_id, ""), params.shingle_words
    )
    member = role_of(fp, template, lambda: text, params)
    if member is None or member.role == Role.PARTIAL:
        return False
    row = MemberRow(submission_id, member.role, member.containment, member.additions)
    store.write_campaign(session, campaign, template_id, {submission_id: row}, now)
    return True


def _keys(fp: Fingerprint, params: CampaignParams) -> list[int]:
    if fp.size < params.min_shared:
        return []  # too short to be anyone's template
    return band_keys(signature(fp), params.bands, params.rows)


def _update_versions(
    session: Session, submission_id: int, settings: CampaignSettings, now: dt.datetime
) -> tuple[set[int], set[int]]:
    """Relink the versions among this response's sender's (or organisation's) responses.

    Returns the family, and those of it that became superseded or stopped being so.
    """
    row = responses.response_rows(session, [submission_id])[0]
    if not row.sender_email:
        return set(), set()
    org = organisation_of(row.sender_email, settings.public_mail_domains)
    family = responses.same_sender_or_domain(session, submission_id, row.sender_email, org)
    ids = [r.id for r in family]
    if len(ids) < 2:
        return set(ids), set()
    replaced_before = responses.superseded_ids(session, ids)
    later = ids[ids.index(submission_id) + 1 :]
    if not work.done_among(session, later, "cluster"):
        # Newest of its family, or every later one still waits for this stage (a poll's
        # batch): a response's link depends only on those before it, so only its own is
        # worked out, comparing it with the earlier ones newest first until one
        # qualifies; the later ones link themselves in turn.
        prefix = family[: len(ids) - len(later)]
        own, _ = responses.version_of(session, submission_id)  # its link, made before
        by_others = (replaced_before & {r.id for r in prefix}) - (
            {own.earlier_id} if own is not None else set()
        )
        link = _newest_link(session, prefix, by_others, settings)
        responses.replace_versions(session, [submission_id], [link] if link else [])
    else:  # read again, or older mail imported after newer: the family's links afresh
        links = _version_links(family, responses.texts(session, ids), settings)
        responses.replace_versions(session, ids, links)
    replaced_after = responses.superseded_ids(session, ids)
    relinked = replaced_before ^ replaced_after
    # A version that a later one replaced is no longer tagged (and one restored is).
    work.mark_due(session, sorted(relinked), ["tag"], now)
    return set(ids), relinked


def _who(row: responses.ResponseRow, settings: CampaignSettings) -> tuple[str | None, str | None]:
    """A response's address (lower case) and organisation, as versions compare them."""
    return (
        (row.sender_email or "").lower() or None,
        organisation_of(row.sender_email, settings.public_mail_domains),
    )


def _version_doc(row: responses.ResponseRow, text: str, settings: CampaignSettings) -> VersionDoc:
    sender, organisation = _who(row, settings)
    return VersionDoc(
        id=row.id,
        sender=sender,
        organisation=organisation,
        fp=fingerprint(text, settings.shingle_words),
        replaces=says_it_replaces(text),
    )


def _newest_link(
    session: Session,
    family: Sequence[responses.ResponseRow],
    superseded: set[int],
    settings: CampaignSettings,
) -> tuple[int, int, str] | None:
    """The link of the family's newest response to the earlier one it replaces, if any."""
    newest = family[-1]
    doc = _version_doc(newest, responses.texts(session, [newest.id]).get(newest.id, ""), settings)
    before = list(reversed(family[:-1]))
    looked_at = compared((doc.sender, doc.organisation), [_who(row, settings) for row in before])
    # Only those it is compared with have their texts loaded.
    earlier = [
        row
        for row, wanted in zip(before, looked_at, strict=True)
        if wanted and row.id not in superseded
    ]
    by_id = {row.id: row for row in earlier}

    def docs() -> Iterator[VersionDoc]:  # texts loaded 500 at a time, only as far as needed
        for sid, text in responses.iter_texts(session, [row.id for row in earlier]):
            yield _version_doc(by_id[sid], text, settings)

    link = link_for(doc, docs(), superseded, settings.version_repeat)
    return (link.earlier, link.later, link.reason) if link else None


def _version_links(
    rows: Sequence[responses.ResponseRow], texts: dict[int, str], settings: CampaignSettings
) -> list[tuple[int, int, str]]:
    docs = [_version_doc(row, texts.get(row.id, ""), settings) for row in rows]
    return [
        (link.earlier, link.later, link.reason)
        for link in find_versions(docs, settings.version_repeat)
    ]


def refresh(
    session: Session, settings: CampaignSettings, now: dt.datetime, campaign_ids: Iterable[int]
) -> None:
    """Regroup these campaigns' members (and pinned responses) after a staff decision."""
    store.lock_campaigns(session)
    scope = sorted(store.members_of(session, campaign_ids))
    _regroup(session, scope, params_of(settings), now, responses.superseded_ids(session, scope))


@dataclass
class RecomputeSummary:
    responses: int = 0
    versions: int = 0
    campaigns: int = 0
    members: int = 0


def recompute_all(
    session: Session,
    settings: CampaignSettings,
    now: dt.datetime,
    progress: Callable[[int], None] | None = None,
) -> RecomputeSummary:
    """Recompute versions, band keys and campaigns over every stored response."""
    store.lock_campaigns(session)
    params = params_of(settings)
    rows = responses.response_rows(session)
    summary = RecomputeSummary(responses=len(rows))
    families: dict[str, list[responses.ResponseRow]] = {}
    for row in rows:
        if row.sender_email:
            key = organisation_of(row.sender_email, settings.public_mail_domains)
            families.setdefault(key or row.sender_email.lower(), []).append(row)
    links: list[tuple[int, int, str]] = []
    for family in families.values():
        if len(family) > 1:
            texts = responses.texts(session, [r.id for r in family])
            links += _version_links(family, texts, settings)
    responses.replace_versions(session, [r.id for r in rows], links)
    summary.versions = len(links)
    superseded = {earlier for earlier, _, _ in links}
    bands: list[tuple[int, list[int]]] = []
    summary.campaigns, summary.members = _regroup(
        session, [r.id for r in rows], params, now, superseded, bands, progress
    )
    responses.replace_all_bands(session, bands)
    return summary


def _regroup(
    session: Session,
    scope: Sequence[int],
    params: CampaignParams,
    now: dt.datetime,
    superseded: set[int],
    bands: list[tuple[int, list[int]]] | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """Group the responses of ``scope`` afresh and rewrite their campaigns."""
    order = [r.id for r in responses.response_rows(session, scope) if r.id not in superseded]

    def fingerprints() -> Iterator[tuple[int, Fingerprint]]:
        for n, (sid, text) in enumerate(responses.iter_texts(session, order), start=1):
            fp = fingerprint(text, params.shingle_words)
            if bands is not None:
                bands.append((sid, _keys(fp, params)))
            if progress is not None and n % 100 == 0:
                progress(100)
            yield sid, fp

    groups = find_groups(fingerprints(), params)
    if progress is not None:
        progress(len(order) % 100)
    previous = store.memberships(session, scope)
    roles_before = store.member_roles(session, scope)
    pins = {sid: cid for sid, cid in store.pins(session, scope).items() if sid not in superseded}
    settled = settle(groups, previous, pins)
    store.clear_members(session, list(scope))
    session.flush()
    campaigns = members = 0
    for campaign_id, ids, pinned in settled:
        view = _describe(session, ids - superseded, params, pinned)
        if view is None:
            continue
        campaign = session.get(Campaign, campaign_id) if campaign_id else None
        if campaign is None:
            campaign = store.new_campaign(session, now)
        rows = {
            sid: MemberRow(sid, m.role, m.containment, m.additions)
            for sid, m in view.members.items()
        }
        store.write_campaign(session, campaign, view.template, rows, now)
        campaigns += 1
        members += len(rows)
    session.flush()
    store.drop_empty(session)
    roles_after = store.member_roles(session, scope)
    # A response that became (or stopped being) a plain copy, or whose own additions
    # changed, is tagged again: copies are counted in their campaign, not tagged twice.
    retag = [sid for sid in scope if roles_before.get(sid) != roles_after.get(sid)]
    work.mark_due(session, retag, ["tag"], now)
    session.flush()
    return campaigns, members


def _describe(
    session: Session, ids: Iterable[int], params: CampaignParams, pinned: set[int]
) -> CampaignView | None:
    wanted = sorted(ids)
    texts = responses.texts(session, wanted)
    cache: dict[int, Fingerprint] = {}

    def fp_of(sid: int) -> Fingerprint:
        if sid not in cache:
            cache[sid] = fingerprint(texts.get(sid, ""), params.shingle_words)
        return cache[sid]

    return describe(wanted, fp_of, lambda sid: texts.get(sid, ""), params, keep=pinned)
