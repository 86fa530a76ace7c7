"""Campaign detection (pure): which responses share a template, and what each adds.

Two passes over the responses, in the order they arrived:

1. *Candidates and links.* Identical texts (same normalised words) are taken together.
   Each distinct text's MinHash is looked up in an LSH index (its bands) of
   representative texts; each candidate is checked exactly, by **containment**: the
   share of the candidate's shingles the text holds (a template inside a longer letter
   still scores near 1), or the share of the text that is the candidate's (a short quote).
   Linked texts are joined (union-find). A text that largely holds, or is largely held
   by, a representative is not indexed itself (its extra words are its sender's own),
   so a campaign of thousands stays a handful of index entries.
2. *Describe.* For each group, the **template** is the member closest to the group's
   core (the shingles at least half as common as the commonest), and every member gets a
   role by how much of the template it holds and what else it says:
   ``copy``, ``copy_with_additions`` (its own passages are kept, quoted exactly) or
   ``partial`` (for staff to confirm). Members holding too little are let go.

:func:`settle` then reconciles fresh groups with stored campaigns and staff decisions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from .text import NUM_PERM, Fingerprint, overlap, own_runs, signature

if TYPE_CHECKING:
    from datasketch import MinHashLSH

__all__ = [
    "BandIndex",
    "CampaignParams",
    "CampaignView",
    "Member",
    "Role",
    "describe",
    "find_groups",
    "role_of",
    "settle",
]


class Role:
    TEMPLATE = "template"
    COPY = "copy"
    COPY_WITH_ADDITIONS = "copy_with_additions"
    PARTIAL = "partial"


@dataclass(frozen=True)
class CampaignParams:
    """The detector's knobs ([campaigns] in the configuration)."""

    shingle_words: int = 5
    bands: int = 42
    rows: int = 3
    link_containment: float = 0.35  # share of a representative a text must hold to join it
    quote_share: float = 0.8  # or: share of the text that is the representative's
    copy_containment: float = 0.5  # share of the template a copy holds
    partial_containment: float = 0.25  # share of the template a partial quotes
    min_shared: int = 15  # shingles two texts must share to be linked at all
    min_members: int = 2
    own_text_min_words: int = 8
    representative_close: float = 0.7  # a text holding (or held by) this much of one is not indexed

    def lsh(self) -> MinHashLSH:
        """datasketch's index with these bands (:class:`BandIndex` finds the same)."""
        from datasketch import MinHashLSH  # imported on first use: see text._template

        return MinHashLSH(num_perm=NUM_PERM, params=(self.bands, self.rows))


@dataclass(frozen=True)
class Member:
    role: str
    containment: float  # share of the template's shingles this response holds
    additions: str | None  # its own passages, when it has any


@dataclass(frozen=True)
class CampaignView:
    template: int
    members: dict[int, Member]


class BandIndex:
    """Signatures by their LSH bands: what datasketch's ``MinHashLSH`` with the same
    bands and rows answers (the texts agreeing with one on every row of some band),
    kept in plain dictionaries, without building a MinHash object for each text."""

    def __init__(self, bands: int, rows: int) -> None:
        if bands * rows > NUM_PERM:
            raise ValueError(f"{bands} bands of {rows} rows need more than {NUM_PERM} values")
        self.bands, self.rows = bands, rows
        self._tables: list[dict[bytes, list[int]]] = [{} for _ in range(bands)]

    def _keys(self, values: np.ndarray) -> list[bytes]:
        raw = values.tobytes()
        width = self.rows * values.itemsize
        return [raw[band * width : (band + 1) * width] for band in range(self.bands)]

    def insert(self, doc_id: int, values: np.ndarray) -> None:
        for table, key in zip(self._tables, self._keys(values), strict=True):
            table.setdefault(key, []).append(doc_id)

    def query(self, values: np.ndarray) -> list[int]:
        found: set[int] = set()
        for table, key in zip(self._tables, self._keys(values), strict=True):
            hit = table.get(key)
            if hit is not None:
                found.update(hit)
        return sorted(found)


class _Groups:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, item: int) -> int:
        parent = self.parent
        root = item
        while parent.get(root, root) != root:
            root = parent[root]
        while item != root:
            item, parent[item] = parent.get(item, item), root
        return root

    def union(self, a: int, b: int) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            ra, rb = min(ra, rb), max(ra, rb)
            self.parent[rb] = ra
        return ra


def find_groups(
    docs: Iterable[tuple[int, Fingerprint]], params: CampaignParams = CampaignParams()
) -> list[list[int]]:
    """Groups of response ids sharing a template (at least ``min_members`` each).

    ``docs`` is consumed once, in arrival order; only representatives' shingles are kept.
    """
    groups = _Groups()
    first_of_key: dict[str, int] = {}
    dups: dict[int, list[int]] = {}
    reps: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # shingles, MinHash values
    lsh = BandIndex(params.bands, params.rows)
    for doc_id, fp in docs:
        seen = first_of_key.get(fp.key)
        if seen is not None:
            dups.setdefault(seen, []).append(doc_id)
            continue
        if fp.size < params.min_shared:
            continue  # too short to tell a copy from a coincidence, even when identical
        first_of_key[fp.key] = doc_id
        values = signature(fp)
        closest = 0.0
        for cand in _plausible(lsh.query(values), values, fp.size, reps, params):
            if closest >= params.representative_close and groups.find(cand) == groups.find(doc_id):
                continue
            rep = reps[cand][0]
            shared = int(np.intersect1d(fp.shingles, rep, assume_unique=True).size)
            if shared < params.min_shared:
                continue
            held, quoted = shared / rep.size, shared / fp.size
            if held >= params.link_containment or quoted >= params.quote_share:
                groups.union(cand, doc_id)
                closest = max(closest, held, quoted)
        if closest < params.representative_close:
            lsh.insert(doc_id, values)
            reps[doc_id] = (fp.shingles, values)
    members: dict[int, list[int]] = {}
    for doc_id in first_of_key.values():
        members.setdefault(groups.find(doc_id), []).extend([doc_id, *dups.get(doc_id, [])])
    return sorted(
        (sorted(ids) for ids in members.values() if len(ids) >= params.min_members),
        key=lambda ids: ids[0],
    )


def _plausible(
    candidates: list[int],
    values: np.ndarray,
    size: int,
    reps: dict[int, tuple[np.ndarray, np.ndarray]],
    params: CampaignParams,
) -> list[int]:
    """Candidates whose estimated containment (from MinHash agreement) could pass."""
    if len(candidates) < 4:
        return candidates
    ordered = sorted(candidates)
    agree = (np.stack([reps[c][1] for c in ordered]) == values).mean(axis=1)
    sizes = np.array([reps[c][0].size for c in ordered], dtype=np.float64)
    shared = agree * (sizes + size) / (1 + agree)
    keep = (shared >= 0.6 * params.link_containment * sizes) | (
        shared >= 0.6 * params.quote_share * size
    )
    return [c for c, ok in zip(ordered, keep.tolist(), strict=True) if ok]


def _template(distinct: list[tuple[int, Fingerprint, int]]) -> tuple[int, Fingerprint]:
    """The member closest to the group's core: most core shingles, least else."""
    arrays = [fp.shingles for _, fp, _ in distinct]
    weights = np.concatenate(
        [
            np.full(a.size, w, dtype=np.float64)
            for a, (_, _, w) in zip(arrays, distinct, strict=True)
        ]
    )
    uniq, inverse = np.unique(np.concatenate(arrays), return_inverse=True)
    freq = np.bincount(inverse, weights=weights)
    core = freq >= 0.5 * freq.max()
    best: tuple[float, int] | None = None
    chosen = distinct[0]
    offset = 0
    for item, array in zip(distinct, arrays, strict=True):
        in_core = int(core[inverse[offset : offset + array.size]].sum())
        offset += array.size
        score = (in_core - (array.size - in_core), -item[0])
        if best is None or score > best:
            best, chosen = score, item
    return chosen[0], chosen[1]


def role_of(
    fp: Fingerprint,
    template: Fingerprint,
    text: Callable[[], str],
    params: CampaignParams = CampaignParams(),
    keep: bool = False,
) -> Member | None:
    """A response's role against a template; None when it holds too little of it.

    ``keep`` (staff put it there) makes a response that holds too little ``partial``.
    """
    shared = overlap(fp, template)
    held = shared / template.size if template.size else 0.0
    quoted = shared / fp.size if fp.size else 0.0
    # Own words make at least that many shingles of their own: without them, no runs.
    possible = fp.size - shared >= params.own_text_min_words
    own = own_runs(fp, template, text(), params.own_text_min_words) if possible else []
    additions = "\n\n[...]\n\n".join(own) or None
    if held >= params.copy_containment:
        role = Role.COPY_WITH_ADDITIONS if additions else Role.COPY
    elif (
        held >= params.partial_containment
        or (quoted >= params.quote_share and shared >= params.min_shared)
        or keep
    ):
        role = Role.PARTIAL
    else:
        return None
    return Member(role, round(held, 4), additions)


def describe(
    ids: Iterable[int],
    fingerprint_of: Callable[[int], Fingerprint],
    text_of: Callable[[int], str],
    params: CampaignParams = CampaignParams(),
    keep: Iterable[int] = (),
) -> CampaignView | None:
    """Choose the template of a group and give each member its role.

    Members holding too little of the template are let go, unless in ``keep`` (placed
    there by staff); None when fewer than ``min_members`` remain and nobody is kept.
    """
    keep = set(keep)
    by_key: dict[str, list[int]] = {}
    fps: dict[str, Fingerprint] = {}
    for doc_id in sorted(set(ids)):
        fp = fingerprint_of(doc_id)
        by_key.setdefault(fp.key, []).append(doc_id)
        fps.setdefault(fp.key, fp)
    distinct = [(same[0], fps[key], len(same)) for key, same in by_key.items() if fps[key].size]
    if not distinct:
        return None
    template_id, template = _template(distinct)
    members: dict[int, Member] = {}
    for key, same in by_key.items():
        fp = fps[key]
        for doc_id in same:
            if fp.key == template.key:
                role = Role.TEMPLATE if doc_id == template_id else Role.COPY
                members[doc_id] = Member(role, 1.0, None)
                continue
            member = role_of(fp, template, partial(text_of, doc_id), params, doc_id in keep)
            if member is not None:
                members[doc_id] = member
    if len(members) < params.min_members and not keep & set(members):
        return None
    return CampaignView(template_id, members)


def settle(
    groups: Iterable[Iterable[int]],
    previous: Mapping[int, int],
    pins: Mapping[int, int | None],
) -> list[tuple[int | None, set[int], set[int]]]:
    """Match fresh groups to stored campaigns; staff pins win over detection.

    Args:
        groups: the detector's groups of response ids.
        previous: response id -> the campaign it was in before this recompute.
        pins: response id -> the campaign staff put it in (None: staff said "not a copy").

    Returns:
        (campaign id, or None for a new campaign; members; the pinned among them), the
        campaign chosen for each group being the stored one sharing the most members.
    """
    result: dict[int, tuple[set[int], set[int]]] = {}
    fresh: list[set[int]] = []
    unpinned = [{i for i in group if i not in pins} for group in groups]
    unpinned.sort(key=lambda g: (-len(g), min(g) if g else 0))
    for group in unpinned:
        if not group:
            continue
        votes = Counter(previous[i] for i in group if i in previous)
        choice = next(
            (
                cid
                for cid, _ in sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))
                if cid not in result
            ),
            None,
        )
        if choice is None:
            fresh.append(group)
        else:
            result[choice] = (group, set())
    for doc_id, cid in pins.items():
        if cid is None:
            continue
        members, pinned = result.setdefault(cid, (set(), set()))
        members.add(doc_id)
        pinned.add(doc_id)
    settled: list[tuple[int | None, set[int], set[int]]] = [
        (cid, members, pinned) for cid, (members, pinned) in sorted(result.items())
    ]
    settled += [(None, group, set()) for group in fresh]
    return settled
