"""The search query language: parse what a person typed, compile it for each engine.

Pure: no database, no I/O. The language is the one people know from web search:

- ``home care``: every word must match (in any order);
- ``"home care"``: the exact phrase;
- ``care OR support``: either word (``OR`` in capitals, between two terms);
- ``-parking``: leave out responses with this word (or ``-"exact phrase"``);
- ``procure*``: any word starting with ``procure`` (at least three letters).

Nothing a person types is a syntax error. A word is reduced to its runs of letters and
digits, so brackets, colons, ``NEAR``, ``^`` and the like are taken as plain words or
ignored; ``AND`` is ignored (all words must match anyway); a lone ``-``, ``*`` or
``OR`` with nothing on one side is ignored; an unclosed quote runs to the end. A query
of only exclusions, or of nothing searchable, finds nothing.

:func:`to_fts5` gives an SQLite FTS5 ``MATCH`` expression in which every word is a
quoted string, so no FTS5 keyword or column filter can get through. :func:`to_tsquery`
gives a PostgreSQL ``tsquery`` expression built only from ``phraseto_tsquery`` and
``to_tsquery`` over bound parameters that hold letters and digits.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["MAX_QUERY_CHARS", "MAX_TERMS", "Query", "Term", "parse", "to_fts5", "to_tsquery"]

MAX_QUERY_CHARS = 1000  # the rest of a longer query is ignored
MAX_TERMS = 32  # terms past this are ignored: a query this long is no longer a search
MIN_PREFIX = 3  # ``ab*`` would walk most of the vocabulary; it is taken as the word ``ab``
_MAX_WORD = 100  # no real word is longer; the tokenizers would not index it whole anyway

_TOKEN = re.compile(r'(-?)"([^"]*)"?|([^\s"]+)')
_RUN = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Term:
    """One searchable unit: a word, or a phrase of several words in order."""

    words: tuple[str, ...]
    prefix: bool = False  # the last word is a prefix


@dataclass(frozen=True)
class Query:
    """A parsed query: all ``groups`` must match (each group is an OR of its terms)."""

    groups: tuple[tuple[Term, ...], ...] = ()
    excluded: tuple[Term, ...] = ()

    @property
    def empty(self) -> bool:
        """True when nothing can match (no positive term at all)."""
        return not self.groups


def _term(text: str, *, phrase: bool) -> Term | None:
    prefix = not phrase and text.endswith("*")
    runs = tuple(run[:_MAX_WORD] for run in _RUN.findall(text.lower()))
    if not runs:
        return None
    if prefix and len(runs[-1]) < MIN_PREFIX:
        prefix = False
    return Term(runs, prefix)


def _tokens(text: str) -> list[tuple[str, Term | None, bool]]:
    """Split into ("or", None, False) markers and ("term", term, excluded) items."""
    items: list[tuple[str, Term | None, bool]] = []
    for match in _TOKEN.finditer(text):
        minus, phrase, word = match.group(1), match.group(2), match.group(3)
        if word is None:
            items.append(("term", _term(phrase, phrase=True), bool(minus)))
        elif word == "OR":
            items.append(("or", None, False))
        elif word != "AND":
            excluded = word.startswith("-") and len(word) > 1
            items.append(("term", _term(word.lstrip("-"), phrase=False), excluded))
    return items


def parse(text: str) -> Query:
    """Parse what a person typed; never raises, whatever the input."""
    text = unicodedata.normalize("NFC", text[:MAX_QUERY_CHARS].replace("\x00", " "))
    groups: list[list[Term]] = []
    excluded: list[Term] = []
    joining = False  # an OR follows a positive term: the next positive term joins it
    after_positive = False
    count = 0
    for kind, term, negative in _tokens(text):
        if kind == "or":
            joining = after_positive
            continue
        if term is None or count >= MAX_TERMS:
            continue  # nothing searchable in it: an OR on either side stays pending
        count += 1
        if negative:
            excluded.append(term)
            joining = after_positive = False
        elif joining:
            groups[-1].append(term)
            joining = False
        else:
            groups.append([term])
            after_positive = True
    return Query(tuple(tuple(group) for group in groups), tuple(excluded))


# --- SQLite FTS5 -------------------------------------------------------------------------


def _fts5_term(term: Term) -> str:
    # Letters and digits only inside the quotes: nothing is read as FTS5 syntax.
    return '"' + " ".join(term.words) + '"' + ("*" if term.prefix else "")


def to_fts5(query: Query) -> str:
    """The FTS5 MATCH expression for ``query`` (empty string when it is empty)."""
    if query.empty:
        return ""
    groups = ["(" + " OR ".join(_fts5_term(t) for t in group) + ")" for group in query.groups]
    expression = " AND ".join(groups)
    if query.excluded:
        expression = (
            f"({expression}) NOT (" + " OR ".join(_fts5_term(t) for t in query.excluded) + ")"
        )
    return expression


# --- PostgreSQL tsquery ------------------------------------------------------------------


def _tsquery_term(term: Term, config: str, params: dict[str, str]) -> str:
    def bind(value: str) -> str:
        name = f"q{len(params)}"
        params[name] = value
        return f":{name}"

    if not term.prefix:
        return f"phraseto_tsquery('{config}', {bind(' '.join(term.words))})"
    # The words are letters and digits only, so the quoted lexeme cannot break out.
    last = f"to_tsquery('{config}', {bind(chr(39) + term.words[-1] + chr(39) + ':*')})"
    if len(term.words) == 1:
        return last
    head = f"phraseto_tsquery('{config}', {bind(' '.join(term.words[:-1]))})"
    return f"tsquery_phrase({head}, {last})"


def to_tsquery(query: Query, config: str) -> tuple[str, dict[str, str]]:
    """An SQL expression of type ``tsquery`` for ``query``, and its bound parameters.

    ``config`` is a text search configuration name chosen by the program, never by the
    user. Stop words give empty parts, which PostgreSQL drops from ``&&`` and ``||``.
    """
    params: dict[str, str] = {}
    groups = [
        "(" + " || ".join(_tsquery_term(t, config, params) for t in group) + ")"
        for group in query.groups
    ]
    expression = " && ".join(groups) or "''::tsquery"
    if query.excluded:
        excluded = " || ".join(_tsquery_term(t, config, params) for t in query.excluded)
        expression = f"({expression}) && !!({excluded})"
    return expression, params
