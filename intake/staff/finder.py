"""Find responses for the web view's search box.

Until full-text search is part of this program, this is a plain, case-insensitive
filter on sender and subject. :func:`find` is the one place the web view calls, so
switching it to a real search changes nothing else; a hit may carry a snippet.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from store import browse

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
    """Responses whose sender or subject contains ``query``, newest first."""
    query = query.strip()
    if not query:
        return []
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
