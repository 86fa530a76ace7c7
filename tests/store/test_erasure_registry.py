"""The erasers registry: a table added later is covered by purge and erase without other change."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session, sessionmaker

from store import db, erasure, repo

NOW = dt.datetime(2018, 7, 27, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = db.open_database(db_url)
    yield db.make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def index_eraser() -> Iterator[None]:
    """A stand-in "search index" table's eraser, registered as a future module would."""

    @erasure.register_eraser("test_search_index")
    def _erase(session: Session, ids: Sequence[int], anonymise: bool) -> int:
        statement = text("DELETE FROM test_search_index WHERE submission_id IN :ids")
        statement = statement.bindparams(bindparam("ids", expanding=True))
        result = session.execute(statement, {"ids": list(ids)})
        return int(getattr(result, "rowcount", 0))

    yield
    erasure._ERASERS.pop("test_search_index")


def test_registered_eraser_runs_with_the_core_ones(sessions, index_eraser) -> None:
    """erase_submissions runs every registered eraser and counts rows per table."""
    with sessions() as session:
        kept = repo.store_raw(
            session,
            raw=b"Subject: a\r\n\r\nkeep",
            message_id="<k@x>",
            message_id_derived=False,
            source="test",
            fetched_at=NOW,
            reference_prefix="KIL",
        )
        gone = repo.store_raw(
            session,
            raw=b"Subject: b\r\n\r\nerase",
            message_id="<e@x>",
            message_id_derived=False,
            source="test",
            fetched_at=NOW,
            reference_prefix="KIL",
        )
        session.execute(text("CREATE TABLE test_search_index (submission_id INTEGER, words TEXT)"))
        for sid in (kept.submission_id, gone.submission_id):
            session.execute(
                text("INSERT INTO test_search_index VALUES (:s, 'private words')"), {"s": sid}
            )
        counts = erasure.erase_submissions(session, [gone.submission_id], anonymise=True)
        session.commit()
        left = session.execute(text("SELECT submission_id FROM test_search_index")).scalars()
        assert list(left) == [kept.submission_id]
    assert counts["test_search_index"] == 1 and counts["raw_messages"] == 1
    assert list(counts)[:6] == [
        "raw_messages",
        "attachments",
        "skipped_parts",
        "acks",
        "submissions",
        "audit_events",
    ]
