"""Find responses for the web view's search box: the full-text search of ``intake search``.

:func:`find` is the one place the web view calls. It ranks with the search index
(the same query language and the same function as the command line) and gives each
hit its marked snippet; only while the index is still empty (a database from before
search, not yet rebuilt) does it fall back to a plain filter on sender and subject.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from store import browse

from . import search

__all__ = ["Hit", "find"]


@dataclass(frozen=True)
class Hit:
    """One search result; ``snippet`` marks matches between \\x02 and \\x03 when present."""

    reference: str
    received_at: dt.datetime | None
    sender: str
    subject: str
    score: float = 0.0
    where: str = ""
    snippet: str = ""

    def snippet_html(self) -> Markup:
        """The snippet escaped, with each match in <mark>."""
        text = str(escape(self.snippet))
        return Markup(text.replace("\x02", "<mark>").replace("\x03", "</mark>"))  # noqa: S704


def find(session: Session, query: str, *, limit: int = 20, offset: int = 0) -> list[Hit]:
    """The responses that best match ``query``, best first, each with its snippet."""
    query = query.strip()
    if not query:
        return []
    if not search.needs_rebuild(session):
        return [
            Hit(
                reference=hit.reference or "",
                received_at=hit.received_at,
                sender=hit.sender_email or hit.sender_name or "",
                subject=hit.subject or "",
                score=hit.score,
                where=hit.where,
                snippet="".join(
                    f"\x02{_unmarked(text)}\x03" if matched else _unmarked(text)
                    for text, matched in hit.snippet.segments
                ),
            )
            for hit in search.search(session, query, limit=limit, offset=offset)
        ]
    rows = browse.sender_subject_matches(session, query, limit=limit, offset=offset)
    return [
        Hit(
            reference=row.reference,
            received_at=row.received_at,
            sender=row.sender_email or "",
            subject=row.subject or "",
            where="sender or subject",
        )
        for row in rows
    ]


def _unmarked(text: str) -> str:
    """A response's own text never carries our marks (a hostile \\x02 makes no <mark>)."""
    return text.replace("\x02", " ").replace("\x03", " ")
