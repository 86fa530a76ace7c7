"""Searching responses: one function for the command line and the web view.

:func:`search` parses what a person typed (never an error, see
:mod:`store.search_query`), asks the index for the best-ranked responses and returns
:class:`SearchHit` values whose snippet knows which words matched, to be shown with
``[brackets]`` on a terminal or ``<mark>`` in HTML.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from store import search as index
from store.search_query import parse

__all__ = [
    "SearchHit",
    "Snippet",
    "count",
    "indexable",
    "needs_rebuild",
    "printable",
    "rebuild",
    "search",
]

_REBUILD_BATCH = 500
_REBUILD_CONNECTIONS = 2  # SQLite has one writer at a time


_CONTROLS = dict.fromkeys([*range(32), *range(127, 160)], " ")


def printable(value: str) -> str:
    """``value`` on one line with control characters as spaces (safe for a terminal)."""
    return " ".join(value.translate(_CONTROLS).split())


@dataclass(frozen=True)
class Snippet:
    """A passage of text as (text, matched) segments."""

    segments: tuple[tuple[str, bool], ...]

    @classmethod
    def from_marked(cls, value: str) -> Snippet:
        """Read a snippet whose matched words the index put between its two marks."""
        segments: list[tuple[str, bool]] = []
        for number, piece in enumerate(value.split(index.MARK_START)):
            matched, _, rest = piece.partition(index.MARK_END) if number else ("", "", piece)
            if matched:
                segments.append((matched, True))
            if rest:
                segments.append((rest, False))
        return cls(tuple(segments))

    def plain(self) -> str:
        """The text without marks, on one line, without control characters."""
        return printable("".join(text for text, _ in self.segments))

    def terminal(self) -> str:
        """The text on one line with matched words in ``[brackets]``.

        Control characters (a hostile message's terminal escapes) become spaces.
        """
        return printable("".join(f"[{text}]" if hit else text for text, hit in self.segments))

    def html(self) -> str:
        """HTML-escaped text with matched words in ``<mark>``."""
        return "".join(
            f"<mark>{html.escape(text)}</mark>" if hit else html.escape(text)
            for text, hit in self.segments
        )


@dataclass(frozen=True)
class SearchHit:
    """One response that matched, as staff see it."""

    reference: str | None
    received_at: dt.datetime | None
    sender_name: str | None
    sender_email: str | None
    subject: str | None
    timeliness: str | None
    where: str  # "body" or the attachment's filename
    score: float  # higher is better; comparable only within one search
    snippet: Snippet


def search(
    session: Session,
    query: str,
    *,
    limit: int = 20,
    offset: int = 0,
    timeliness: str | None = None,
    since: dt.datetime | None = None,
) -> list[SearchHit]:
    """The responses that best match ``query``, best first.

    Args:
        query: what the person typed; any text is accepted.
        limit, offset: the page of results.
        timeliness: ``"on_time"`` or ``"late"`` to keep only those.
        since: keep responses received at or after this instant (aware).
    """
    hits = index.find(
        session, parse(query), limit=limit, offset=offset, timeliness=timeliness, since=since
    )
    return [
        SearchHit(
            reference=hit.reference,
            received_at=hit.received_at,
            sender_name=hit.sender_name,
            sender_email=hit.sender_email,
            subject=hit.subject,
            timeliness=hit.timeliness,
            where=hit.part,
            score=hit.score,
            snippet=Snippet.from_marked(hit.snippet),
        )
        for hit in hits
    ]


def count(
    session: Session,
    query: str,
    *,
    timeliness: str | None = None,
    since: dt.datetime | None = None,
) -> int:
    """How many responses match ``query``."""
    return index.count_matches(session, parse(query), timeliness=timeliness, since=since)


def rebuild(sessions: sessionmaker[Session], progress: Callable[[int], None] | None = None) -> int:
    """Rebuild the whole index from the stored text; returns the responses indexed.

    Commits every few hundred responses, so the worker is never held up for long;
    searches meanwhile find only what is indexed so far. On PostgreSQL, where the
    server makes the rows, two connections share the batches (one server process each).
    """
    with sessions() as session:
        ids = index.submissions_to_index(session)
        index.clear_index(session)
        session.commit()
        writers = _REBUILD_CONNECTIONS if session.get_bind().dialect.name == "postgresql" else 1
    chunks = [ids[start : start + _REBUILD_BATCH] for start in range(0, len(ids), _REBUILD_BATCH)]

    def index_chunk(chunk: list[int]) -> int:
        with sessions() as session:
            index.index_submissions(session, chunk, fresh=True)
            session.commit()
        return len(chunk)

    for done in _each(index_chunk, chunks, writers):
        if progress is not None:
            progress(done)
    with sessions() as session:
        index.finish_rebuild(session)
        session.commit()
    return len(ids)


def _each(
    function: Callable[[list[int]], int], items: list[list[int]], workers: int
) -> Iterator[int]:
    """``function`` of each item, in order, run by ``workers`` threads at once.

    On an error (or Ctrl-C) the items not started yet are dropped, not run.
    """
    if workers == 1:
        yield from map(function, items)
        return
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        yield from pool.map(function, items)
    finally:
        pool.shutdown(cancel_futures=True)


def indexable(session: Session) -> int:
    """How many responses the index should hold."""
    return len(index.submissions_to_index(session))


def needs_rebuild(session: Session) -> bool:
    """True when responses are stored but none is in the index (after an upgrade)."""
    return index.is_empty(session) and bool(index.submissions_to_index(session))
