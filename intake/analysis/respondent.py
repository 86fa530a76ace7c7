"""What kind of respondent sent a response, and which organisation (pure).

The evidence, strongest first: the sender's domain (``.gov.uk`` and the Welsh and
Scottish government domains, ``.ac.uk``, ``.nhs.uk``...), then what the signature
and letterhead say (a registered charity number, "Council", "Co-operative",
"CIC", "Ltd"), then the body. Public mail providers (gmail, outlook,
btinternet...) say nothing about an organisation. Every choice comes with the
evidence for it, so staff can check it and correct it with ``intake tag``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["PUBLIC_MAIL_DOMAINS", "RESPONDENT_TYPES", "Respondent", "classify_respondent"]

RESPONDENT_TYPES = (
    "local_authority",
    "public_body",
    "community_organisation",
    "charity",
    "business",
    "academic",
    "individual",
    "unknown",
)

PUBLIC_MAIL_DOMAINS = frozenset(
    """gmail.com googlemail.com outlook.com hotmail.com hotmail.co.uk live.com live.co.uk
    msn.com yahoo.com yahoo.co.uk ymail.com aol.com aol.co.uk icloud.com me.com mac.com
    btinternet.com btopenworld.com talktalk.net sky.com virginmedia.com ntlworld.com
    blueyonder.co.uk tiscali.co.uk plus.com zen.co.uk protonmail.com proton.me gmx.com
    gmx.co.uk mail.com fastmail.com tutanota.com orange.net o2.co.uk""".split()
)

_COUNCIL_DOMAIN = (".gov.uk", ".gov.wales", ".gov.scot", ".llyw.cymru", ".gov.ni", ".gov.je")
_PUBLIC_DOMAIN = (
    ".nhs.uk",
    ".nhs.wales",
    ".nhs.scot",
    ".police.uk",
    ".mod.uk",
    ".parliament.uk",
    ".gov.uk",
    ".gov.wales",
    ".gov.scot",
    ".llyw.cymru",
)
# Central government's own domains: under .gov.uk, everything else is most often a council.
_CENTRAL_LABELS = frozenset(
    """gov gsi dwp hmrc justice homeoffice cabinetoffice cabinet-office communities education
    dft defra dhsc dh hmtreasury treasury fco fcdo mod beis dcms ons nao ofsted cqc ofwat
    ofgem parliament digital culture levellingup mhclg ukhsa phe environment-agency
    naturalengland highwaysengland nationalhighways companieshouse landregistry""".split()
)
_ACADEMIC_DOMAIN = (".ac.uk", ".edu", ".ac.cymru")

_ORG_WORDS = (
    r"Council|Cyngor|Borough|County|Authority|Trust|Association|Society|Co-?operative|"
    r"Cymdeithas|Ymddiriedolaeth|CIC|C\.I\.C\.|Ltd|Limited|plc|LLP|University|Prifysgol|"
    r"College|Network|Partnership|Foundation|Group|Centre|Center|Alliance|Forum|Project|"
    r"Charity|Elusen|Federation|Institute|Consortium|Commission|Board|Agency|Department|"
    r"Ministry|Hub|Collective|Services|Enterprises?"
)
_ORG_LINE = re.compile(rf"\b(?:{_ORG_WORDS})\b")
_ON_BEHALF = re.compile(
    r"(?:on behalf of|responding for|response from|ar ran)\s+(?:the\s+)?([A-Z][\w'&.,\- ]{2,80}?)"
    r"(?=[.,;:\n(]|\s+(?:to|in|and|which|who)\b|$)",
)
_CHARITY_NO = re.compile(
    r"(?:registered\s+charity|charity\s+(?:no|number|reg)|elusen\s+gofrestredig|"
    r"rhif\s+elusen|SC0\d{5}\b)",
    re.IGNORECASE,
)
_WE_ARE_A_CHARITY = re.compile(r"\b(?:we are a|our) (?:small )?(?:local )?charity\b", re.I)
_NAMES_A_COUNCIL = re.compile(r"\b(?:Council|Cyngor|Borough)\b")
_IN_OWN_NAME = re.compile(r"\b(?:I am|I'm|I live|as a resident|Rwy'n|Dw i)\b")
_CLEAN_REGISTERED = re.compile(r"\s*[,|]\s*(registered|charity|company|rhif).*$", re.IGNORECASE)
_CLEAN_RESPONSE = re.compile(r"\s+(?:response|submission|ymateb)\b.*$", re.IGNORECASE)
_GREETING = re.compile(r"\b(dear|yours|regards|thank)\b", re.IGNORECASE)
_TYPE_WORDS = (
    (
        re.compile(r"\b(?:University|Prifysgol|Institute of|School of|Research Centre)\b"),
        "academic",
    ),
    (
        re.compile(
            r"\b(?:(?:City|County|Borough|District|Town|Parish|Community|Metropolitan)?\s*Council"
            r"|Cyngor|Local Authority|Combined Authority)\b"
        ),
        "local_authority",
    ),
    (
        re.compile(
            r"\b(?:NHS|Health Board|Police|Fire and Rescue|Commissioner|Government|Ombudsman"
            r"|Llywodraeth)\b"
        ),
        "public_body",
    ),
    (
        re.compile(
            r"\b(?:CIC|C\.I\.C\.|Community Interest Company|Cwmni Buddiant Cymunedol|Co-?operative"
            r"|Cydweithredol|Community Benefit Society|Development Trust|Residents'? Association"
            r"|Tenants'? Association|Community Association|Community Group|Friends of)\b"
        ),
        "community_organisation",
    ),
    (re.compile(r"\b(?:Ltd|Limited|plc|LLP|Consulting|Consultancy|Solutions)\b"), "business"),
)

# Words every match of a pattern contains (case as written; for a pattern that ignores
# case, in lower case): a text holding none of them is not searched at all. Searching
# a 20 KB response for nothing is most of what classifying it costs.
_NEEDLES: dict[re.Pattern[str], tuple[str, ...]] = {
    _ON_BEHALF: ("on behalf of", "responding for", "response from", "ar ran"),
    _CHARITY_NO: ("charity", "elusen", "sc0"),
    _WE_ARE_A_CHARITY: ("charity",),
    _NAMES_A_COUNCIL: ("Council", "Cyngor", "Borough"),
    _IN_OWN_NAME: ("I am", "I'm", "I live", "as a resident", "Rwy'n", "Dw i"),
    _TYPE_WORDS[0][0]: ("University", "Prifysgol", "Institute of", "School of", "Research Centre"),
    _TYPE_WORDS[1][0]: ("Council", "Cyngor", "Local Authority", "Combined Authority"),
    _TYPE_WORDS[2][0]: (
        "NHS",
        "Health Board",
        "Police",
        "Fire and Rescue",
        "Commissioner",
        "Government",
        "Ombudsman",
        "Llywodraeth",
    ),
    _TYPE_WORDS[3][0]: (
        "CIC",
        "C.I.C.",
        "Community Interest Company",
        "Cwmni Buddiant Cymunedol",
        "operative",
        "Cydweithredol",
        "Community Benefit Society",
        "Development Trust",
        "Association",
        "Community Group",
        "Friends of",
    ),
    _TYPE_WORDS[4][0]: ("Ltd", "Limited", "plc", "LLP", "Consulting", "Consultancy", "Solutions"),
}


def _search(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """``pattern.search(text)``, skipped when the text holds none of its needles."""
    needles = _NEEDLES[pattern]
    if pattern.flags & re.IGNORECASE:
        # Ignoring case, a letter also matches a few non-ASCII ones (the Kelvin sign
        # matches "k"): only an ASCII text is safely checked in lower case.
        if text.isascii():
            lowered = text.lower()
            if not any(needle in lowered for needle in needles):
                return None
    elif not any(needle in text for needle in needles):
        return None
    return pattern.search(text)


@dataclass(frozen=True)
class Respondent:
    """The respondent type, the organisation (or ""), and why."""

    type: str
    organisation: str
    evidence: tuple[str, ...]


def _domain(sender: str | None) -> str:
    if not sender or "@" not in sender:
        return ""
    return sender.rsplit("@", 1)[1].strip().lower().rstrip(">")


def _council_like(domain: str) -> bool:
    """A government domain whose own label is not a central department's."""
    for suffix in _COUNCIL_DOMAIN:
        if domain.endswith(suffix):
            labels = domain[: -len(suffix)].split(".")
            return bool(labels[-1]) and labels[-1] not in _CENTRAL_LABELS
    return False


def _edges(texts: list[str]) -> str:
    """The letterhead and signature of each text: where organisations name themselves."""
    parts = []
    for text in texts:
        parts.append(text[:1500])
        if len(text) > 1500:
            parts.append(text[-2000:])
    return "\n".join(parts)


def _organisation(sender_name: str | None, texts: list[str]) -> str:
    """The organisation's name from 'on behalf of X', a signature line, or the sender's name."""
    for text in texts:
        match = _search(_ON_BEHALF, text)
        if match and _ORG_LINE.search(match.group(1)):
            return match.group(1).strip(" .,")
    if sender_name and _ORG_LINE.search(sender_name):
        return sender_name.strip()
    for text in texts:
        for line in _signature_then_letterhead(text):
            words = line.split()
            if 1 < len(words) <= 10 and _ORG_LINE.search(line) and not line.endswith("."):
                cleaned = _CLEAN_REGISTERED.sub("", line)
                cleaned = _CLEAN_RESPONSE.sub("", cleaned)
                if not _GREETING.search(cleaned):
                    return cleaned.strip(" ,")
    return ""


def _signature_then_letterhead(text: str) -> list[str]:
    """The last 8 and then the first 4 non-blank lines of a text, stripped (the two
    overlap in a short text), without stripping every line in between."""
    lines = text.splitlines()
    last: list[str] = []
    for line in reversed(lines):
        stripped = line.strip()
        if stripped:
            last.append(stripped)
            if len(last) == 8:
                break
    last.reverse()
    first: list[str] = []
    for line in lines:
        stripped = line.strip()
        if stripped:
            first.append(stripped)
            if len(first) == 4:
                break
    return last + first


def _type_from_words(words: str) -> tuple[str, str] | None:
    """A type from what the letterhead, signature or organisation's name says."""
    for pattern, kind in _TYPE_WORDS:
        match = _search(pattern, words)
        if match:
            return kind, match.group(0).strip()
    return None


def classify_respondent(
    sender_email: str | None, sender_name: str | None, texts: list[str]
) -> Respondent:
    """Decide the respondent type and organisation of one response.

    Args:
        sender_email: the From address.
        sender_name: the From display name.
        texts: the email body and each readable attachment's text.
    """
    domain = _domain(sender_email)
    texts = [t for t in texts if t and t.strip()]
    edges = _edges(texts)
    organisation = _organisation(sender_name, texts)
    evidence: list[str] = []
    public_mail = domain in PUBLIC_MAIL_DOMAINS
    if public_mail:
        evidence.append(f"{domain} is a public mail provider (says nothing about an organisation)")
    named = _type_from_words(" ".join(filter(None, [organisation, sender_name or ""])))

    kind = ""
    if domain.endswith(_ACADEMIC_DOMAIN):
        kind = "academic"
        evidence.append(f"sender's domain {domain} is academic")
    elif domain.endswith(_COUNCIL_DOMAIN) and (
        (named and named[0] == "local_authority")
        or _search(_NAMES_A_COUNCIL, edges)
        or _council_like(domain)
    ):
        kind = "local_authority"
        evidence.append(
            f"sender's domain {domain} is a government domain and the text names a council"
        )
    elif domain.endswith(_PUBLIC_DOMAIN):
        kind = "public_body"
        evidence.append(f"sender's domain {domain} belongs to the public sector")
    found = None if kind else _search(_CHARITY_NO, edges)
    if found:
        kind = "charity"
        evidence.append(f"registered charity: {found.group(0)!r}")
    if not kind and named:
        kind = named[0]
        evidence.append(f"the organisation's name says {named[1]!r}")
    if not kind:
        from_edges = _type_from_words(edges)
        if from_edges and from_edges[0] != "business":
            kind = from_edges[0]
            evidence.append(f"letterhead or signature says {from_edges[1]!r}")
    if not kind and _search(_WE_ARE_A_CHARITY, edges):
        kind = "charity"
        evidence.append("the response says it is a charity")
    if not kind and domain and not public_mail:
        if domain.endswith((".org.uk", ".org", ".cymru", ".wales", ".scot")):
            kind = "community_organisation" if "community" in edges.lower() else "charity"
            evidence.append(f"sender's domain {domain} is an organisation's own domain")
        elif domain.endswith((".co.uk", ".com", ".ltd.uk", ".biz", ".uk")):
            kind = "business"
            evidence.append(f"sender's domain {domain} is a company domain")
    if not kind and organisation:
        # A named group with no other cue (often on a personal mail address): the most
        # common such respondent is a small community group.
        kind = "community_organisation"
        evidence.append(f"signed in the name of an organisation: {organisation!r}")
    if not kind:
        body = " ".join(texts)[:4000]
        if public_mail or _search(_IN_OWN_NAME, body):
            kind = "individual"
            evidence.append("written by a person in their own name; no organisation found")
            organisation = ""
        else:
            kind = "unknown"
            evidence.append("nothing says who the respondent is")
    return Respondent(kind, organisation[:300], tuple(evidence))
