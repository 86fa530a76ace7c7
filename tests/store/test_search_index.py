"""The index itself on both engines: long texts, hostile bytes, removal."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from store import search
from store.db import make_session_factory, open_database
from store.models import Attachment, Submission
from store.search_query import parse

NOW = dt.datetime(2018, 7, 20, 10, 0, tzinfo=dt.UTC)


def _submission(number: int, body: str, files: list[tuple[str, str]] = ()) -> Submission:
    submission = Submission(
        reference=f"KIL-{number:05d}",
        message_id=f"<index-{number}@example.net>",
        sha256=f"{number:064x}",
        size=100,
        source="test",
        fetched_at=NOW,
        received_at=NOW,
        status="parsed",
        sender_email=f"person{number}@example.net",
        subject=f"Response {number}",
        body_text=body,
    )
    for position, (filename, text) in enumerate(files, start=1):
        submission.attachments.append(
            Attachment(
                position=position,
                filename=filename,
                content_type="text/plain",
                size=len(text),
                sha256="0" * 64,
                parse_status="ok",
                text=text,
            )
        )
    return submission


def test_long_text_nul_bytes_and_removal(db_url: str) -> None:
    """A phrase 20,000 words into a file is found; NUL and mark bytes are harmless; removal works."""
    engine = open_database(db_url)
    sessions = make_session_factory(engine)
    filler = (
        "lorem ipsum dolor sit amet " * 4000
    )  # 20,000 words, past PostgreSQL's 16,383 positions
    # PostgreSQL refuses NUL in stored text; SQLite keeps it, and the index must cope.
    nul = "\x00" if db_url.startswith("sqlite") else ""
    with sessions() as session:
        first = _submission(
            1,
            f"body with a NUL{nul} and \x01marks\x02",
            [("long.txt", filler + "the hidden treasure map")],
        )
        second = _submission(2, "nothing to see", [])
        session.add_all([first, second])
        session.flush()
        ids = [first.id, second.id]
        written = search.index_submissions(session, ids)
        session.commit()
        assert written > 3  # the body row, then the long file in several passages
        hits = search.find(session, parse('"hidden treasure map"'))
        assert [(h.reference, h.part) for h in hits] == [("KIL-00001", "long.txt")]
        assert search.MARK_START in hits[0].snippet
        assert [h.reference for h in search.find(session, parse("marks"))] == ["KIL-00001"]
        assert search.count_matches(session, parse("lorem")) == 1
        assert search.indexed_count(session) == 2
        search.remove_from_index(session, [first.id])
        session.commit()
        assert search.find(session, parse("treasure")) == []
        assert search.indexed_count(session) == 1
        assert not search.is_empty(session)
        search.remove_from_index(session, [second.id])
        assert search.is_empty(session)
        assert search.index_size(session) > 0
    engine.dispose()


def test_public_names() -> None:
    """The modules export what they document, and nothing by accident."""
    assert set(search.__all__) == {
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
    }


def test_deleting_a_submission_deletes_its_rows(db_url: str) -> None:
    """Rows go with their submission (a trigger on SQLite, the foreign key on PostgreSQL)."""
    engine = open_database(db_url)
    sessions = make_session_factory(engine)
    with sessions() as session:
        kept, gone = _submission(1, "apples and pears"), _submission(2, "apples and plums")
        session.add_all([kept, gone])
        session.flush()
        search.index_submissions(session, [kept.id, gone.id])
        session.commit()
        assert search.count_matches(session, parse("apples")) == 2
        session.delete(gone)
        session.commit()
        assert search.indexed_count(session) == 1
        assert [h.reference for h in search.find(session, parse("apples"))] == ["KIL-00001"]
    engine.dispose()


def test_long_and_short_texts_give_the_same_words(db_url: str) -> None:
    """A body indexed with a long file (cut into passages here) gives the row it gives alone."""
    engine = open_database(db_url)
    sessions = make_session_factory(engine)
    body = "Write to office@example.gov.uk: <b>care</b> at example.org/a_b \x01x\x02 Siân\u2003 "
    long_file = "lorem ipsum dolor sit amet " * 2500  # two passages
    with sessions() as session:
        alone = _submission(1, body)
        cut = _submission(2, body, [("blank.txt", "\u3000 \n"), ("long.txt", long_file)])
        cut.sender_email = alone.sender_email
        cut.subject = alone.subject
        session.add_all([alone, cut])
        session.flush()
        search.index_submissions(session, [alone.id, cut.id])
        postgres = db_url.startswith("postgresql")
        key = "id" if postgres else "rowid"
        columns = (
            "part, subject, sender, document::text" if postgres else "part, subject, sender, body"
        )
        rows = session.execute(sa.text(f"SELECT {key}, {columns} FROM search_index ORDER BY {key}"))
        by_id = {row[0]: tuple(row[1:]) for row in rows}
        first, second = alone.id * 4096, cut.id * 4096
        assert by_id[first] == by_id[second]
        assert sorted(by_id) == [first, second, second + 1, second + 2]  # no row for blank.txt
        assert {by_id[second + 1][0], by_id[second + 2][0]} == {"long.txt"}
        found = search.find(session, parse("office example care Sian"))
        assert [hit.reference for hit in found] == ["KIL-00001", "KIL-00002"]
        assert all(search.MARK_START in hit.snippet for hit in found)
    engine.dispose()
