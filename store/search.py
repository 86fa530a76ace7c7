"""The full-text search index and all its SQL, on SQLite (FTS5) and PostgreSQL (tsvector).

The index has one row per searchable part of a response: its body, then each
attachment's text (a very long text is split into passages, so that PostgreSQL keeps
word positions for phrases all the way through). Every row also carries the response's
subject, sender and organisation, so a word of the subject and a word of a file find
the response together. Row ids are ``submission id * 4096 + part number``.

Rows are written by :func:`index_submissions` (the ``index`` stage and ``intake search
--rebuild``) and deleted by :func:`remove_from_index` (re-reading, purge). On PostgreSQL
the server builds the rows itself from the stored text (one ``INSERT ... SELECT``, no
text sent back and forth); only a response with a text too long for one passage is cut
into passages here and sent. :func:`find`
ranks responses (BM25 on SQLite; on PostgreSQL ``ts_rank_cd`` for several terms, which
rewards words close together, and ``ts_rank`` for one) and returns one hit per
response with a snippet whose matched words sit between :data:`MARK_START` and
:data:`MARK_END`. The query language is :mod:`store.search_query`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

from .base import chunks
from .erasure import register_eraser
from .models import Attachment, Submission, SubmissionKind, SubmissionStatus, UTCDateTime
from .search_query import Query, to_fts5, to_tsquery

__all__ = [
    "CONFIG",
    "MARK_END",
    "MARK_START",
    "IndexHit",
    "clear_index",
    "count_matches",
    "find",
    "finish_rebuild",
    "index_size",
    "index_submissions",
    "indexed_count",
    "is_empty",
    "remove_from_index",
    "submissions_to_index",
]

CONFIG = "intake_english"  # the PostgreSQL text search configuration made by migration 0008
MARK_START, MARK_END = "\x01", "\x02"  # around matched words in snippets; removed from texts
PARTS_PER_SUBMISSION = 4096  # parts past this are not indexed (no real response has them)
PASSAGE_CHARS = 50_000  # about 8,000 words: well inside PostgreSQL's 16,383 word positions
SNIPPET_WORDS = 20  # 16 or more keeps a six-word phrase whole
_GIN_BUILD_MEMORY = "512MB"
_UNSAFE = str.maketrans({"\x00": " ", MARK_START: " ", MARK_END: " "})
# What str.strip() removes; the server is given the same list, so both skip the same parts.
_BLANKS = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# A word character for the joiner rule below: an ASCII letter, digit or underscore, or any
# character past ASCII (spelled out, so that it does not depend on the database's locale).
_WORD = r"[^\x01-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]"
_SEPARATORS = rf"[<>]|(?<={_WORD})[@./:_](?={_WORD})"
_HEADLINE = (
    f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords={SNIPPET_WORDS}, MinWords=10, ShortWord=2"
)


@dataclass(frozen=True)
class IndexHit:
    """One response that matched, with the part that matched best."""

    submission_id: int
    reference: str | None
    received_at: dt.datetime | None
    sender_name: str | None
    sender_email: str | None
    subject: str | None
    timeliness: str | None
    part: str  # "body" or the attachment's filename
    score: float  # higher is better
    snippet: str  # with MARK_START / MARK_END around matched words


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _clean(value: str | None) -> str:
    return (value or "").translate(_UNSAFE)


def _words(value: str) -> str:
    """SQL: the text ``value`` as PostgreSQL should index it (bind ``separators``).

    PostgreSQL's parser keeps ``office@example.gov.uk`` or ``example.org/path`` as one
    token, which a search for ``example`` would not find; FTS5 splits them, and so does
    the query parser, so both engines agree. Angle brackets become spaces too: its
    parser takes ``<script>`` for an HTML tag and drops the word inside.
    """
    return f"regexp_replace({value}, :separators, ' ', 'g')"


def _document(subject: str, sender: str, organisation: str, body: str) -> str:
    """SQL: one row's ``tsvector`` from these SQL expressions (subject weighs most)."""
    header = f"{sender} || ' ' || {organisation}"
    return (
        f"setweight(to_tsvector('{CONFIG}', {_words(subject)}), 'A')"
        f" || setweight(to_tsvector('{CONFIG}', {_words(header)}), 'B')"
        f" || to_tsvector('{CONFIG}', {_words(body)})"
    )


def _cleaned(value: str) -> str:
    """SQL: ``value`` with the snippet marks as spaces (as :func:`_clean` does)."""
    return f"replace(replace({value}, chr(1), ' '), chr(2), ' ')"


def _passages(value: str) -> Iterator[str]:
    """Cut a long text at white space into passages of at most PASSAGE_CHARS."""
    start = 0
    while len(value) - start > PASSAGE_CHARS:
        end = start + PASSAGE_CHARS
        space = max(value.rfind(" ", start, end), value.rfind("\n", start, end))
        if space > start + PASSAGE_CHARS // 2:
            end = space + 1
        yield value[start:end]
        start = end
    yield value[start:]


# --- writing -------------------------------------------------------------------------------

_INSERT_SQLITE = text(
    "INSERT INTO search_index (rowid, subject, sender, organisation, body, part)"
    " VALUES (:id, :subject, :sender, :organisation, :body, :part)"
)
_INSERT_POSTGRES = text(
    "INSERT INTO search_index (id, submission_id, part, subject, sender, organisation, body,"
    " document) VALUES (:id, :submission_id, :part, :subject, :sender, :organisation, :body,"
    f" {_document(':subject', ':sender', ':organisation', ':body')})"
)
# Which of the given submissions to index, and whether one of its texts is too long to be
# a single passage (a byte count is read from the stored value's header, not the text).
_CLASSIFY_POSTGRES = text(
    "SELECT s.id, octet_length(coalesce(s.body_text, '')) > :passage OR EXISTS ("
    "SELECT 1 FROM attachments AS a WHERE a.submission_id = s.id"
    " AND octet_length(a.text) > :passage) FROM submissions AS s"
    " WHERE s.id IN :ids AND s.status <> :purged AND s.kind = :response ORDER BY s.id"
).bindparams(bindparam("ids", expanding=True))
# The rows of submissions whose every text is one passage, made by the server from the
# stored text: the same rows, numbers and words as _rows_for() and _INSERT_POSTGRES give,
# without a copy of the text (_STORED_TEXT reads it back for a snippet).
_SUBJECT = _cleaned("coalesce(subject, '')")
_SENDER = _cleaned("concat_ws(' ', nullif(sender_name, ''), nullif(sender_email, ''))")
_BODY = _cleaned("coalesce(body_text, '')")
_COPY_DOCUMENT = _document("s.subject", "s.sender", "''", "p.body")
_COPY_POSTGRES = text(
    f"WITH s AS MATERIALIZED (SELECT id, {_SUBJECT} AS subject, {_SENDER} AS sender,"
    f" {_BODY} AS body FROM submissions WHERE id IN :ids),"
    " files AS (SELECT submission_id, position, left(filename, 500) AS part,"
    f" {_cleaned('text')} AS body FROM attachments"
    " WHERE submission_id IN :ids AND text IS NOT NULL),"
    " parts AS (SELECT id AS sid, 0 AS number, 'body' AS part, body FROM s UNION ALL"
    " SELECT submission_id, row_number() OVER (PARTITION BY submission_id ORDER BY position),"
    " part, body FROM files WHERE btrim(body, :blanks) <> '')"
    " INSERT INTO search_index (id, submission_id, part, subject, sender, organisation, body,"
    f" document) SELECT p.sid * {PARTS_PER_SUBMISSION} + p.number, p.sid, p.part, s.subject,"
    f" s.sender, '', '', {_COPY_DOCUMENT}"
    f" FROM parts AS p JOIN s ON s.id = p.sid WHERE p.number < {PARTS_PER_SUBMISSION}"
).bindparams(bindparam("ids", expanding=True))


def remove_from_index(session: Session, submission_ids: Iterable[int]) -> None:
    """Delete the index rows of these submissions (purge, erasure, before re-indexing)."""
    ids = sorted(set(submission_ids))
    if _postgres(session):
        delete = text("DELETE FROM search_index WHERE submission_id IN :ids").bindparams(
            bindparam("ids", expanding=True)
        )
        for chunk in chunks(ids):
            session.execute(delete, {"ids": chunk})
        return
    delete = text("DELETE FROM search_index WHERE rowid >= :low AND rowid < :high")
    ranges = [{"low": sid * PARTS_PER_SUBMISSION, "high": (sid + 1) * PARTS_PER_SUBMISSION}
              for sid in ids]
    if ranges:
        session.execute(delete, ranges)  # one executemany


def clear_index(session: Session) -> None:
    """Delete every row of the index, to rebuild it; then call :func:`finish_rebuild`.

    On PostgreSQL the GIN index is dropped too: building it once at the end is several
    times faster than updating it row by row.
    """
    if _postgres(session):
        session.execute(text("DROP INDEX IF EXISTS ix_search_index_document"))
        session.execute(text("TRUNCATE search_index"))
        return
    session.execute(text("DELETE FROM search_index"))


def finish_rebuild(session: Session) -> None:
    """Make the rebuilt index ready for searching (PostgreSQL: GIN index, statistics)."""
    if _postgres(session):
        # The GIN build collects entries in maintenance_work_mem (64 MB by default) and
        # writes them out each time it fills; more memory, for this transaction only,
        # means fewer, larger writes.
        session.execute(text(f"SET LOCAL maintenance_work_mem = '{_GIN_BUILD_MEMORY}'"))
        session.execute(
            text(
                "CREATE INDEX IF NOT EXISTS ix_search_index_document"
                " ON search_index USING gin (document)"
            )
        )
        session.execute(text("ANALYZE search_index"))
    else:
        # Merges the index's segments: fewer b-tree lookups per query afterwards.
        session.execute(text("INSERT INTO search_index (search_index) VALUES ('optimize')"))


def _rows_for(submission: Any, files: list[tuple[str, str]]) -> Iterator[dict[str, object]]:
    sender = " ".join(filter(None, [submission.sender_name, submission.sender_email]))
    header = {
        "submission_id": submission.id,
        "subject": _clean(submission.subject),
        "sender": _clean(sender),
        "organisation": "",  # filled once a later stage knows the organisation
    }
    parts = [("body", submission.body_text or ""), *files]
    number = 0
    for part, body in parts:
        for passage in _passages(_clean(body)):
            if number >= PARTS_PER_SUBMISSION:
                return
            if passage.strip(_BLANKS) or number == 0:  # the body row always: it has the header
                yield header | {
                    "id": submission.id * PARTS_PER_SUBMISSION + number,
                    "part": part[:500],
                    "body": passage,
                }
                number += 1


def index_submissions(
    session: Session, submission_ids: Sequence[int], *, fresh: bool = False
) -> int:
    """(Re)index these submissions from their stored text; returns the rows written.

    Purged submissions and delivery reports about our own mail are left out.
    ``fresh`` skips deleting old rows (the index was just cleared).
    """
    postgres = _postgres(session)
    if postgres:
        session.flush()  # the server reads the stored text itself
    written = 0
    for chunk in chunks(sorted(set(submission_ids))):
        if not fresh:
            remove_from_index(session, chunk)
        if postgres:
            written += _index_in_server(session, chunk)
        else:
            written += _index_here(session, chunk, _INSERT_SQLITE)
    return written


def _index_in_server(session: Session, ids: list[int]) -> int:
    """PostgreSQL: the rows of ``ids`` made in the server; passages cut here if need be."""
    values = {
        "ids": ids,
        "passage": PASSAGE_CHARS,
        "purged": SubmissionStatus.PURGED.value,
        "response": SubmissionKind.RESPONSE.value,
    }
    whole: list[int] = []
    cut: list[int] = []
    for sid, long in session.execute(_CLASSIFY_POSTGRES, values):
        (cut if long else whole).append(sid)
    written = 0
    if whole:
        copy = {"ids": whole, "blanks": _BLANKS, "separators": _SEPARATORS}
        written += session.execute(_COPY_POSTGRES, copy).rowcount  # type: ignore[attr-defined]
    if cut:
        written += _index_here(session, cut, _INSERT_POSTGRES)
    return written


def _index_here(session: Session, ids: list[int], insert: TextClause) -> int:
    """Rows of ``ids`` made here from their stored text, one passage at a time."""
    submissions = session.execute(
        select(
            Submission.id,
            Submission.subject,
            Submission.sender_name,
            Submission.sender_email,
            Submission.body_text,
        )
        .where(
            Submission.id.in_(ids),
            Submission.status != SubmissionStatus.PURGED,
            Submission.kind == SubmissionKind.RESPONSE,
        )
        .order_by(Submission.id)
    ).all()
    files: dict[int, list[tuple[str, str]]] = {}
    for sid, filename, body in session.execute(
        select(Attachment.submission_id, Attachment.filename, Attachment.text)
        .where(Attachment.submission_id.in_(ids), Attachment.text.is_not(None))
        .order_by(Attachment.submission_id, Attachment.position)
    ):
        files.setdefault(sid, []).append((filename, body or ""))
    rows = [row for sub in submissions for row in _rows_for(sub, files.get(sub.id, []))]
    if rows and insert is _INSERT_POSTGRES:
        for row in rows:
            row["separators"] = _SEPARATORS
    if rows:
        session.execute(insert, rows)
    return len(rows)


# --- reading -------------------------------------------------------------------------------


def _filters(timeliness: str | None, since: dt.datetime | None) -> tuple[str, dict[str, object]]:
    """A WHERE clause made of fixed fragments, and the values bound to it.

    Every SQL statement in this module is built from fixed fragments like these and
    the query compilers' output; what a person typed only ever travels as bound values.
    """
    where: list[str] = []
    params: dict[str, object] = {}
    if timeliness is not None:
        where.append("s.timeliness = :timeliness")
        params["timeliness"] = timeliness
    if since is not None:
        where.append("s.received_at >= :since")
        params["since"] = since
    return (" AND ".join(where) or "1 = 1"), params


_SUBMISSION_COLUMNS = (
    "s.reference, s.received_at, s.sender_name, s.sender_email, s.subject, s.timeliness"
)


def _typed(statement: str) -> TextClause:
    clause = text(statement)
    if ":since" in statement:
        clause = clause.bindparams(bindparam("since", type_=UTCDateTime))
    return clause


def _fts5_expression(query: Query) -> str:
    """The MATCH expression, with an exact-phrase bonus for several plain words.

    BM25 ignores how near the words are; OR-ing in the words as one phrase matches the
    same responses but scores those with the exact phrase much higher.
    """
    expression = to_fts5(query)
    singles = [group[0] for group in query.groups if len(group) == 1]
    if len(query.groups) > 1 and len(singles) == len(query.groups):
        if not any(term.prefix for term in singles):
            words = " ".join(word for term in singles for word in term.words)
            positive = to_fts5(Query(query.groups))
            expression = expression.replace(positive, f'({positive}) OR "{words}"', 1)
    return expression


def find(
    session: Session,
    query: Query,
    *,
    limit: int = 20,
    offset: int = 0,
    timeliness: str | None = None,
    since: dt.datetime | None = None,
) -> list[IndexHit]:
    """The best-ranked responses for ``query``, one hit each, best first."""
    if query.empty or limit <= 0:
        return []
    offset = max(offset, 0)
    where, params = _filters(timeliness, since)
    postgres = _postgres(session)
    restrict = ""
    if where != "1 = 1":
        column = "i.submission_id" if postgres else "rowid / 4096"
        restrict = f" AND {column} IN (SELECT s.id FROM submissions AS s WHERE {where})"
    if postgres:
        expression, query_params = to_tsquery(query, CONFIG)
        params |= query_params
        # MATERIALIZED hides the query from the planner, which then keeps to the GIN
        # index; told the real query, it scans the whole table for a common word.
        # Cover density rewards words found close together, which only matters for
        # several terms; for one term ts_rank orders alike and costs a third.
        rank = "ts_rank_cd" if len(query.groups) > 1 else "ts_rank"
        statement = (
            f"WITH q AS MATERIALIZED (SELECT {expression} AS query)"
            f" SELECT i.id, {rank}(i.document, q.query, 1) AS score"
            f" FROM search_index AS i, q WHERE i.document @@ q.query{restrict}"
            " ORDER BY score DESC, i.id LIMIT :k"
        )
    else:
        params["match"] = _fts5_expression(query)
        # ORDER BY rank lets FTS5 rank in C (ten times faster than grouping in SQL).
        statement = (
            "SELECT rowid, -rank FROM search_index WHERE search_index MATCH :match"
            f"{restrict} ORDER BY rank LIMIT :k"
        )
    ranked = _ranked(session, statement, params, limit + offset)[offset:]
    if not ranked:
        return []
    rids = [rid for _, rid, _ in ranked]
    if postgres:
        snippets = _headlines(session, expression, query_params, rids)
    else:
        snippets = _snippets(session, str(params["match"]), rids)
    details = _details(session, [sid for sid, _, _ in ranked])
    return [
        _hit(details[sid], score, *snippets.get(rid, ("body", "")))
        for sid, rid, score in ranked
        if sid in details
    ]


def _ranked(
    session: Session, statement: str, params: dict[str, object], wanted: int
) -> list[tuple[int, int, float]]:
    """(submission id, row id, score) of the best part of the ``wanted`` best responses.

    Ranking rows, not responses, keeps to the engines' fast "top rows by rank" path; a
    response with several matching parts takes several rows, so the number of rows
    asked for grows until enough distinct responses come back.
    """
    clause = _typed(statement)
    k = wanted * 2 + 8
    while True:
        rows = session.execute(clause, params | {"k": k}).all()
        best: dict[int, tuple[int, float]] = {}
        for rid, score in rows:
            best.setdefault(rid // PARTS_PER_SUBMISSION, (rid, float(score)))
        if len(best) >= wanted or len(rows) < k:
            return [(sid, rid, score) for sid, (rid, score) in best.items()][:wanted]
        k *= 4


def _details(session: Session, sids: list[int]) -> dict[int, Any]:
    statement = (
        text(f"SELECT s.id AS sid, {_SUBMISSION_COLUMNS} FROM submissions AS s WHERE s.id IN :sids")
        .bindparams(bindparam("sids", expanding=True))
        .columns(received_at=UTCDateTime)
    )
    return {row.sid: row for row in session.execute(statement, {"sids": sids})}


def _snippets(session: Session, match: str, rids: list[int]) -> dict[int, tuple[str, str]]:
    statement = text(
        "SELECT rowid, part, snippet(search_index, -1, :start, :end, '…', :words)"
        " FROM search_index WHERE search_index MATCH :match AND rowid IN :rids"
    ).bindparams(bindparam("rids", expanding=True))
    values = {"match": match, "rids": rids, "start": MARK_START, "end": MARK_END}
    rows = session.execute(statement, values | {"words": SNIPPET_WORDS})
    return {rid: (part, snippet) for rid, part, snippet in rows}


# A row made by the server keeps no copy of its text: it is the whole stored text, read
# back here for the rows shown (the body for part 0, else the n-th attachment with text).
_STORED_BODY = _cleaned("coalesce(s.body_text, '')")
_STORED_FILE = _cleaned("coalesce(f.text, '')")
_STORED_TEXT = (
    "CASE WHEN i.body <> '' THEN i.body"
    f" WHEN i.id % {PARTS_PER_SUBMISSION} = 0 THEN {_STORED_BODY} ELSE {_STORED_FILE} END"
)
_FILE_TEXT = (
    "SELECT a.text FROM attachments AS a WHERE i.body = ''"
    f" AND i.id % {PARTS_PER_SUBMISSION} > 0 AND a.submission_id = i.submission_id"
    f" AND a.text IS NOT NULL AND btrim({_cleaned('a.text')}, :blanks) <> ''"
    f" ORDER BY a.position OFFSET greatest(i.id % {PARTS_PER_SUBMISSION} - 1, 0) LIMIT 1"
)


def _headlines(
    session: Session, expression: str, query_params: dict[str, str], rids: list[int]
) -> dict[int, tuple[str, str]]:
    """ts_headline reads the text again: only for the rows shown."""
    statement = text(
        f"WITH q AS (SELECT {expression} AS query)"
        f" SELECT i.id, i.part, ts_headline('{CONFIG}', {_STORED_TEXT}, q.query, :options),"
        f" ts_headline('{CONFIG}', i.subject || ' / ' || i.sender, q.query, :options)"
        " FROM search_index AS i CROSS JOIN q"
        " JOIN submissions AS s ON s.id = i.submission_id"
        f" LEFT JOIN LATERAL ({_FILE_TEXT}) AS f ON true"
        " WHERE i.id IN :rids"
    ).bindparams(bindparam("rids", expanding=True))
    snippets = {}
    values = query_params | {"rids": rids, "options": _HEADLINE, "blanks": _BLANKS}
    for rid, part, body, header in session.execute(statement, values):
        # A match only in the subject or sender shows those instead of the body.
        snippets[rid] = (part, body if MARK_START in body or MARK_START not in header else header)
    return snippets


def _hit(row: Any, score: float, part: str, snippet: str) -> IndexHit:
    return IndexHit(
        submission_id=row.sid,
        reference=row.reference,
        received_at=row.received_at,
        sender_name=row.sender_name,
        sender_email=row.sender_email,
        subject=row.subject,
        timeliness=row.timeliness,
        part=part,
        score=float(score),
        snippet=snippet,
    )


def count_matches(
    session: Session,
    query: Query,
    *,
    timeliness: str | None = None,
    since: dt.datetime | None = None,
) -> int:
    """How many responses match ``query`` (with the same filters as :func:`find`)."""
    if query.empty:
        return 0
    where, params = _filters(timeliness, since)
    filtered = where != "1 = 1"
    if _postgres(session):
        expression, query_params = to_tsquery(query, CONFIG)
        params |= query_params
        matches = (
            f"WITH q AS MATERIALIZED (SELECT {expression} AS query)"
            " SELECT DISTINCT i.submission_id AS sid FROM search_index AS i, q"
            " WHERE i.document @@ q.query"
        )
    else:
        params["match"] = to_fts5(query)
        matches = (
            "SELECT DISTINCT rowid / 4096 AS sid FROM search_index WHERE search_index MATCH :match"
        )
    if filtered:
        statement = (
            f"SELECT count(*) FROM ({matches}) AS m JOIN submissions AS s ON s.id = m.sid"
            f" WHERE {where}"
        )
    else:
        statement = f"SELECT count(*) FROM ({matches}) AS m"
    return int(session.execute(_typed(statement), params).scalar_one())


def is_empty(session: Session) -> bool:
    """True when the index holds no row at all (cheap at any size)."""
    return session.execute(text("SELECT 1 FROM search_index LIMIT 1")).first() is None


def indexed_count(session: Session) -> int:
    """How many responses have rows in the index."""
    column = "submission_id" if _postgres(session) else "rowid / 4096"
    return int(
        session.execute(text(f"SELECT count(DISTINCT {column}) FROM search_index")).scalar_one()
    )


def index_size(session: Session) -> int:
    """Bytes the index takes on disk (tables and indexes; SQLite: the FTS5 shadow tables)."""
    if _postgres(session):
        size = session.execute(text("SELECT pg_total_relation_size('search_index')"))
        return int(size.scalar_one())
    pages = session.execute(
        text("SELECT count(*) FROM dbstat WHERE name LIKE 'search_index%'")
    ).scalar_one()
    page_size = session.execute(text("PRAGMA page_size")).scalar_one()
    return int(pages) * int(page_size)


def submissions_to_index(session: Session) -> list[int]:
    """The ids of every submission the index should hold, in order."""
    return list(
        session.scalars(
            select(Submission.id)
            .where(
                Submission.status != SubmissionStatus.PURGED,
                Submission.kind == SubmissionKind.RESPONSE,
            )
            .order_by(Submission.id)
        )
    )


@register_eraser("search_index")
def _erase_from_index(session: Session, ids: Sequence[int], anonymise: bool) -> int:
    """Purge and erasure take a response out of the index; on SQLite the FTS5 segments
    are merged too, so the deleted terms do not linger in older segments."""
    remove_from_index(session, ids)
    if ids and not _postgres(session):
        session.execute(text("INSERT INTO search_index(search_index) VALUES ('optimize')"))
    return len(ids)
