"""The store on SQLite and PostgreSQL: raw bytes first, one row per message, references never reused."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from store import db, repo
from store.errors import NotFound, SchemaOutOfDate
from store.models import RawMessage, Sighting, Submission

NOW = dt.datetime(2018, 7, 27, 12, 0, tzinfo=dt.UTC)


def _store(session, raw: bytes, key=None, message_id: str = "<a@x>"):
    return repo.store_raw(
        session,
        raw=raw,
        message_id=message_id,
        message_id_derived=False,
        source="test",
        fetched_at=NOW,
        reference_prefix="KIL",
        key=key,
    )


@pytest.fixture
def sessions(db_url: str):
    engine = db.open_database(db_url)
    yield db.make_session_factory(engine)
    engine.dispose()


class TestStoreRaw:
    def test_stores_bytes_exactly(self, sessions) -> None:
        """The raw bytes come back byte for byte, with their reference."""
        raw = b"Subject: x\r\n\r\n\x00\xff binary-safe"
        with sessions() as session:
            stored = _store(session, raw)
        assert stored.created and stored.reference == "KIL-00001"
        with sessions() as session:
            assert repo.load_raw(session, stored.submission_id) == raw

    def test_second_sighting_same_key_is_noop(self, sessions) -> None:
        """The same (mailbox, UIDVALIDITY, UID) never makes a second row."""
        with sessions() as session:
            first = _store(session, b"one", key=("inbox", 7, 1))
            again = _store(session, b"one", key=("inbox", 7, 1))
            assert not again.created and again.submission_id == first.submission_id
            assert session.scalar(select(func.count()).select_from(Submission)) == 1
            assert session.scalar(select(func.count()).select_from(Sighting)) == 1

    def test_same_message_new_uidvalidity_adds_only_a_sighting(self, sessions) -> None:
        """After a UIDVALIDITY change, the same bytes are recognised by Message-ID and SHA-256."""
        with sessions() as session:
            first = _store(session, b"one", key=("inbox", 7, 1))
            moved = _store(session, b"one", key=("inbox", 8, 3))
            assert moved.submission_id == first.submission_id and not moved.created
            assert repo.uid_watermark(session, "inbox", 8) == 3
            assert session.scalar(select(func.count()).select_from(Submission)) == 1

    def test_same_message_id_different_bytes_is_new(self, sessions) -> None:
        """A resend with the same Message-ID but other content is kept as its own submission."""
        with sessions() as session:
            assert _store(session, b"one").created
            assert _store(session, b"two").created

    def test_database_enforces_uniqueness(self, sessions) -> None:
        """The unique key is in the schema, not only in Python."""
        with sessions() as session:
            stored = _store(session, b"one")
            sub = session.get(Submission, stored.submission_id)
            session.add(
                Submission(
                    message_id=sub.message_id, sha256=sub.sha256, size=3, source="x", fetched_at=NOW
                )
            )
            with pytest.raises(IntegrityError):
                session.flush()

    def test_references_never_reused(self, sessions) -> None:
        """Deleting the newest submission does not free its reference number."""
        with sessions() as session:
            _store(session, b"one")
            second = _store(session, b"two")
            session.delete(session.get(Submission, second.submission_id))
            session.commit()
            third = _store(session, b"three")
        assert third.reference == "KIL-00003"

    def test_delete_cascades_to_raw(self, sessions) -> None:
        """Foreign keys are on: a deleted submission takes its raw bytes with it."""
        with sessions() as session:
            stored = _store(session, b"one", key=("inbox", 1, 1))
            session.execute(
                text("DELETE FROM submissions WHERE id = :i"), {"i": stored.submission_id}
            )
            session.commit()
            assert session.scalar(select(func.count()).select_from(RawMessage)) == 0
            assert session.scalar(select(func.count()).select_from(Sighting)) == 0


class TestQueries:
    def test_watermark_and_flags(self, sessions) -> None:
        """The watermark is the highest stored UID; unflagged sightings are listed until marked."""
        with sessions() as session:
            for uid in (1, 2, 5):
                _store(session, f"m{uid}".encode(), key=("inbox", 9, uid))
            assert repo.uid_watermark(session, "inbox", 9) == 5
            assert repo.uid_watermark(session, "inbox", 10) == 0
            assert repo.unflagged_uids(session, "inbox", 9) == [1, 2, 5]
            repo.mark_flagged(session, "inbox", 9, [1, 5])
            session.commit()
            assert repo.unflagged_uids(session, "inbox", 9) == [2]
            assert repo.known_uids(session, "inbox", 9, [1, 3, 5]) == {1, 5}

    def test_pending_then_not(self, sessions) -> None:
        """A stored message is pending until read."""
        with sessions() as session:
            stored = _store(session, b"one")
            assert repo.pending_ids(session) == [stored.submission_id]
            repo.save_reading(session, stored.submission_id, {"status": "parsed"}, [])
            session.commit()
            assert repo.pending_ids(session) == []

    def test_not_found(self, sessions) -> None:
        """An unknown reference says how to find the right one."""
        with sessions() as session, pytest.raises(NotFound, match="intake list"):
            repo.get_by_reference(session, "KIL-99999")


def test_sqlite_pragmas(tmp_path) -> None:
    """SQLite runs in WAL mode with foreign keys on."""
    engine = db.open_database(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_old_schema_is_refused(db_url: str) -> None:
    """A database with tables but an older revision asks for `intake db upgrade`."""
    engine = db.make_engine(db_url)
    db.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'old'"))
    engine.dispose()
    with pytest.raises(SchemaOutOfDate, match="intake db upgrade"):
        db.open_database(db_url)


def test_migrations_round_trip(db_url: str) -> None:
    """Every migration downgrades and upgrades again cleanly."""
    engine = db.make_engine(db_url)
    db.upgrade(engine)
    from alembic import command

    command.downgrade(db._alembic_config(engine), "base")
    assert db.current_revision(engine) is None
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision()
    engine.dispose()


def test_head_revision_constant_matches_migrations() -> None:
    """store.db.HEAD_REVISION names the newest migration in the folder."""
    assert db.HEAD_REVISION == db.head_revision()


class TestStoreBatch:
    def _item(self, raw: bytes, uid: int | None, message_id: str = "<a@x>") -> repo.RawItem:
        import hashlib

        return repo.RawItem(raw=raw, sha256=hashlib.sha256(raw).hexdigest(), message_id=message_id,
                            message_id_derived=False, source="test", fetched_at=NOW,
                            key=("inbox", 7, uid) if uid is not None else None)

    def test_batch_mixes_new_known_and_repeated(self, sessions) -> None:
        """One transaction stores new messages once, records sightings, and skips what it knows."""
        with sessions() as session:
            first = _store(session, b"old", key=("inbox", 7, 1))
            batch = [
                self._item(b"old", 1),  # same key again: nothing new
                self._item(b"old", 9),  # same message under another UID: a sighting only
                self._item(b"new", 2),
                self._item(b"new", 3),  # the same new message twice in one batch
                self._item(b"other", None),
            ]
            stored = repo.store_raws(session, batch, "KIL")
        assert [s.created for s in stored] == [False, False, True, False, True]
        assert stored[0].submission_id == stored[1].submission_id == first.submission_id
        assert stored[2].submission_id == stored[3].submission_id
        with sessions() as session:
            assert session.scalar(select(func.count()).select_from(Submission)) == 3
            assert sorted(session.scalars(select(Sighting.uid))) == [1, 2, 3, 9]
            assert repo.load_raw(session, stored[2].submission_id) == b"new"


def test_processes_opening_a_new_database_at_once_all_succeed(tmp_path) -> None:
    """A worker and a command started together on a new SQLite file: one creates the
    schema while the other waits for it, and neither sees a half-made schema."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    url = f"sqlite:///{tmp_path / 'new.db'}"
    code = f"from store.db import open_database; open_database({url!r}).dispose(); print('ok')"
    import time

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    procs = [start()]
    for _ in range(6):  # the others arrive while the first is still migrating
        time.sleep(0.15)
        procs.append(start())
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 7, [err.decode()[-300:] for _, err in results]


def _where(sql: str) -> str:
    """The condition of a CREATE INDEX statement, in one spelling for both databases."""
    condition = sql.lower().partition(" where ")[2]
    return " ".join(condition.replace("(", " ").replace(")", " ").split())


@pytest.mark.parametrize(("table", "name"), [("sightings", "ix_sightings_unflagged"),
                                             ("submissions", "ix_submissions_sent_in_time")])
def test_partial_indexes_match_the_migrations(db_url: str, table: str, name: str) -> None:
    """Each partial index in the models carries the condition the migrations gave it,
    on each database: the models' metadata describes the schema that exists."""
    from sqlalchemy.schema import CreateIndex

    from store.models import Base

    engine = db.open_database(db_url)
    index = next(i for i in Base.metadata.tables[table].indexes if i.name == name)
    modelled = _where(str(CreateIndex(index).compile(dialect=engine.dialect)))
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            built = connection.execute(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"), {"n": name}
            ).scalar_one()
        else:
            built = connection.execute(
                text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": name}
            ).scalar_one()
    engine.dispose()
    assert modelled and modelled == _where(built)

