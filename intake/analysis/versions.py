"""Revised versions (pure): which response replaces an earlier one from the same sender.

A later response from the same address (or the same organisation: the same mail domain,
never a public mail provider's such as gmail.com) supersedes an earlier one when it
largely repeats it, or says it replaces it ("please use this one instead"). For another
address at the same organisation, saying so is not enough: the texts must share some
content too. The latest version is the one counted; earlier ones are kept, with a diff.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .text import Fingerprint, overlap

__all__ = [
    "ORGANISATION_WINDOW",
    "PUBLIC_MAIL_DOMAINS",
    "VersionDoc",
    "VersionLink",
    "compared",
    "find_versions",
    "link_for",
    "organisation_of",
    "says_it_replaces",
    "version_diff",
]

# Domains where anyone can have an address: sharing one says nothing about who you are.
PUBLIC_MAIL_DOMAINS = frozenset(
    """
    gmail.com googlemail.com outlook.com outlook.co.uk hotmail.com hotmail.co.uk live.com
    live.co.uk msn.com yahoo.com yahoo.co.uk ymail.com rocketmail.com icloud.com me.com
    mac.com aol.com aol.co.uk btinternet.com btopenworld.com sky.com talktalk.net
    virginmedia.com blueyonder.co.uk ntlworld.com tiscali.co.uk plus.net protonmail.com
    proton.me pm.me gmx.com gmx.co.uk gmx.net mail.com zoho.com fastmail.com fastmail.fm
    tutanota.com tuta.io yandex.com hushmail.com qq.com 163.com web.de orange.fr
    """.split()
)

_REPLACES = re.compile(
    r"\b(?:"
    r"(?:please\s+)?(?:use|read|consider|accept|take)\s+this\s+(?:one|version|response|"
    r"submission|email|letter)?\s*instead"
    r"|(?:this|it)\s+(?:replaces|supersedes)\s+(?:my|our|the)\b"
    r"|(?:ignore|disregard)\s+(?:my|our|the)\s+(?:earlier|previous|first|original|last)"
    r"|(?:updated|corrected|revised|amended|replacement)\s+(?:version|response|submission|copy)"
    r"|(?:instead\s+of|in\s+place\s+of)\s+(?:my|our)\s+(?:earlier|previous|first|original)"
    r")",
    re.IGNORECASE,
)


def organisation_of(email: str | None, public: Iterable[str] = ()) -> str | None:
    """The organisation an address speaks for: its domain, unless anyone can have one there."""
    if not email or "@" not in email:
        return None
    domain = email.rsplit("@", 1)[1].strip().lower().rstrip(".")
    if not domain or domain in PUBLIC_MAIL_DOMAINS or domain in {d.lower() for d in public}:
        return None
    return domain


# A word each way of saying so holds: without any of them (in an ASCII start, which
# IGNORECASE cannot match through a character like "\u017f"), the pattern cannot match.
_REPLACES_WORDS = (
    "instead",
    "replaces",
    "supersedes",
    "ignore",
    "disregard",
    "updated",
    "corrected",
    "revised",
    "amended",
    "replacement",
    "place",
)


def says_it_replaces(text: str) -> bool:
    """Whether the start of a response says it replaces an earlier one."""
    start = text[:3000]
    if start.isascii():
        lowered = start.lower()
        if not any(word in lowered for word in _REPLACES_WORDS):
            return False
    return _REPLACES.search(start) is not None


@dataclass(frozen=True)
class VersionDoc:
    id: int
    sender: str | None  # the address, lower case
    organisation: str | None
    fp: Fingerprint
    replaces: bool  # says it replaces an earlier response


@dataclass(frozen=True)
class VersionLink:
    earlier: int
    later: int
    reason: str  # "replaces" (said so) or "repeats" (largely the same text)


# A response is compared with every earlier one from its own address, and with at most
# this many earlier ones (the newest) from other addresses at its organisation: a
# revised version follows its first soon, and an organisation with hundreds of staff
# writing in must not make each arrival read all their responses again.
ORGANISATION_WINDOW = 50


def compared(
    doc: tuple[str | None, str | None], earlier: Iterable[tuple[str | None, str | None]]
) -> list[bool]:
    """Which earlier responses (newest first) a response is compared with, each given as
    its (address, organisation): every one from its own address, and the newest
    :data:`ORGANISATION_WINDOW` from other addresses at its organisation."""
    sender, organisation = doc
    others = 0
    chosen = []
    for their_sender, their_organisation in earlier:
        if sender is not None and their_sender == sender:
            chosen.append(True)
        elif organisation is not None and their_organisation == organisation:
            others += 1
            chosen.append(others <= ORGANISATION_WINDOW)
        else:
            chosen.append(False)
    return chosen


def _similarity(a: Fingerprint, b: Fingerprint) -> float:
    smaller = min(a.size, b.size)
    return overlap(a, b) / smaller if smaller else 0.0


def link_for(
    doc: VersionDoc,
    earlier_newest_first: Iterable[VersionDoc],
    superseded: set[int],
    repeat_share: float = 0.6,
) -> VersionLink | None:
    """The earlier response ``doc`` supersedes, if any: the most recent one that
    qualifies and is not already superseded.

    Args:
        earlier_newest_first: those ``doc`` is compared with (:func:`compared`), newest
            first; may be lazy.
    """
    for earlier in earlier_newest_first:
        if earlier.id in superseded:
            continue
        same_sender = doc.sender is not None and doc.sender == earlier.sender
        share = _similarity(doc.fp, earlier.fp)
        if share >= repeat_share:
            return VersionLink(earlier.id, doc.id, "replaces" if doc.replaces else "repeats")
        if doc.replaces and (same_sender or share >= 0.2):
            return VersionLink(earlier.id, doc.id, "replaces")
    return None


def _who(doc: VersionDoc) -> tuple[str | None, str | None]:
    return doc.sender, doc.organisation


def find_versions(docs: Sequence[VersionDoc], repeat_share: float = 0.6) -> list[VersionLink]:
    """Links from earlier to later versions; ``docs`` in arrival order.

    Each response supersedes at most one earlier one (the most recent that qualifies)
    and is superseded at most once, so versions form chains. A response's link depends
    only on those before it: the newest one can be linked alone (:func:`link_for`).
    """
    links: list[VersionLink] = []
    superseded: set[int] = set()
    for n, doc in enumerate(docs):
        before = docs[:n][::-1]
        chosen = compared(_who(doc), map(_who, before))
        earlier = (other for other, wanted in zip(before, chosen, strict=True) if wanted)
        link = link_for(doc, earlier, superseded, repeat_share)
        if link is not None:
            links.append(link)
            superseded.add(link.earlier)
    return links


def version_diff(earlier: str, later: str, earlier_name: str, later_name: str) -> str:
    """A unified diff of two versions' texts, line by line."""
    return "".join(
        difflib.unified_diff(
            earlier.splitlines(keepends=True),
            later.splitlines(keepends=True),
            fromfile=earlier_name,
            tofile=later_name,
        )
    )
