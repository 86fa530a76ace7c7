"""Stage records, claims and leases on SQLite and PostgreSQL: exclusive, expiring, healing."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys

import pytest
from sqlalchemy import select

from store import db, repo, work
from store.models import Lease
from store.work import StageRow, StageState

NOW = dt.datetime(2018, 7, 27, 12, 0, tzinfo=dt.UTC)
TTL = dt.timedelta(minutes=10)


@pytest.fixture
def sessions(db_url: str):
    engine = db.open_database(db_url)
    yield db.make_session_factory(engine)
    engine.dispose()


def _stored(sessions, count: int, stages=("read", "ack")) -> list[int]:
    items = [
        repo.RawItem(
            raw=f"Subject: {n}\r\n\r\nbody {n}".encode(),
            sha256=f"{n:064x}",
            message_id=f"<{n}@x>",
            message_id_derived=False,
            source="test",
            fetched_at=NOW,
        )
        for n in range(count)
    ]
    with sessions() as session:
        return [s.submission_id for s in repo.store_raws(session, items, "KIL", stages=stages)]


def _dead_holder() -> str:
    """A holder string naming a process on this host that has exited (and been reaped)."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        check=True,
        text=True,
    )
    return f"{socket.gethostname()}:{int(child.stdout)}:dead"


def test_new_submissions_have_their_stages_due(sessions) -> None:
    """Storing a message marks its stages due in the same transaction."""
    ids = _stored(sessions, 3)
    with sessions() as session:
        rows = list(session.scalars(select(StageRow).order_by(StageRow.id)))
    assert {(r.submission_id, r.stage, r.state) for r in rows} == {
        (i, stage, "due") for i in ids for stage in ("read", "ack")
    }


def test_two_claimers_never_share_a_submission(sessions) -> None:
    """Two holders claiming from the same due rows get disjoint batches that cover them."""
    ids = _stored(sessions, 10)
    with sessions() as one, sessions() as two:
        first = work.claim(one, "read", "host:1:a", NOW, TTL, limit=6)
        second = work.claim(two, "read", "host:2:b", NOW, TTL, limit=6)
    assert len(first) == 6 and len(second) == 4
    assert not set(first) & set(second) and set(first) | set(second) == set(ids)


def test_later_stage_waits_for_earlier(sessions) -> None:
    """ "ack" is not claimable until "read" is done for that submission."""
    first, second = _stored(sessions, 2)
    with sessions() as session:
        assert work.claim(session, "ack", "h:1:a", NOW, TTL, before=["read"]) == []
        assert work.claim(session, "read", "h:1:a", NOW, TTL, only=[first]) == [first]
        work.mark_done(session, first, "read", "h:1:a", NOW)
        session.commit()
        assert work.claim(session, "ack", "h:1:a", NOW, TTL, before=["read"]) == [first]


def test_expired_claim_is_claimable_again(sessions) -> None:
    """A claim past claimed_until is taken by the next claimer; before that it is not."""
    (sid,) = _stored(sessions, 1)
    with sessions() as session:
        assert work.claim(session, "read", "elsewhere:1:a", NOW, TTL) == [sid]
        assert work.claim(session, "read", "elsewhere:2:b", NOW + TTL / 2, TTL) == []
        later = NOW + TTL + dt.timedelta(seconds=1)
        assert work.claim(session, "read", "elsewhere:2:b", later, TTL) == [sid]


def test_dead_holders_claim_is_taken_at_once(sessions) -> None:
    """A claim held by a process of this host that has exited is free before it expires."""
    (sid,) = _stored(sessions, 1)
    dead = _dead_holder()
    with sessions() as session:
        assert work.claim(session, "read", dead, NOW, TTL) == [sid]
        assert work.claim(session, "read", work.holder_id(), NOW, TTL) == [sid]


def test_only_the_dead_holders_claims_are_freed(sessions) -> None:
    """Of the claims running on a stage, those of a gone process on this host are free
    at once; a live process's batch, here or elsewhere, stays its own."""
    ids = _stored(sessions, 6)
    dead, here, elsewhere = _dead_holder(), work.holder_id(), "some-other-host:1:x"
    with sessions() as session:
        assert work.claim(session, "read", here, NOW, TTL, limit=2) == ids[:2]
        assert work.claim(session, "read", elsewhere, NOW, TTL, limit=1) == ids[2:3]
        assert work.claim(session, "read", dead, NOW, TTL, limit=2) == ids[3:5]
        assert work.claim(session, "read", "h:2:b", NOW, TTL) == ids[3:]


def test_failures_retry_then_fail_with_reason(sessions) -> None:
    """Each failure counts; the row waits, is retried, and is failed after max_attempts."""
    (sid,) = _stored(sessions, 1)
    holder = "h:1:a"
    at = NOW
    with sessions() as session:
        for attempt in (1, 2, 3):
            assert work.claim(session, "read", holder, at, TTL) == [sid], attempt
            state = work.record_failure(
                session,
                sid,
                "read",
                holder,
                f"boom {attempt}\x00",
                at,
                max_attempts=3,
                retry_after=dt.timedelta(seconds=60),
            )
            session.commit()
            if attempt < 3:
                assert state == StageState.DUE
                # Not before the wait is over (60 s, then 120 s).
                assert work.claim(session, "read", holder, at, TTL) == []
                at += dt.timedelta(seconds=60 * 2 ** (attempt - 1) + 1)
        assert state == StageState.FAILED
        assert work.claim(session, "read", holder, at + TTL * 10, TTL) == []
        (failed,) = work.failed_stages(session)
        assert failed == ("KIL-00001", "read", 3, "boom 3\\x00")
        assert work.stage_counts(session)["read"] == {"failed": 1}


def test_make_due_again_resets_a_failed_stage(sessions) -> None:
    """Making a failed stage due again (reparse) clears its attempts and error."""
    (sid,) = _stored(sessions, 1)
    with sessions() as session:
        work.claim(session, "read", "h:1:a", NOW, TTL)
        work.record_failure(
            session, sid, "read", "h:1:a", "x", NOW, max_attempts=1, retry_after=dt.timedelta(0)
        )
        session.commit()
        assert work.mark_due(session, [sid], ["read"], NOW) == 1
        session.commit()
        row = work.stage_state(session, sid, "read")
        assert row is not None and (row.state, row.attempts, row.last_error) == ("due", 0, None)


def test_lease_of_a_dead_holder_is_taken_over(sessions) -> None:
    """A lease whose holder on this host has exited is taken at once; a live one is not."""
    with sessions() as session:
        assert work.take_lease_healing(session, "poll:x", _dead_holder(), NOW, TTL)
        mine = work.holder_id()
        assert work.take_lease_healing(session, "poll:x", mine, NOW, TTL)
        assert session.scalar(select(Lease.holder)) == mine
        # This process is alive: another claimant waits.
        assert not work.take_lease_healing(session, "poll:x", "h:2:z", NOW, TTL)
        # A holder on another host is trusted until its lease lapses.
        assert work.take_lease_healing(session, "poll:y", "otherhost:1:a", NOW, TTL)
        assert not work.take_lease_healing(session, "poll:y", mine, NOW + TTL / 2, TTL)
        assert work.take_lease_healing(session, "poll:y", mine, NOW + TTL * 2, TTL)


def test_holder_alive() -> None:
    """Only a gone process on this host counts as dead."""
    assert work.holder_alive(work.holder_id())
    assert work.holder_alive(f"{socket.gethostname()}:{os.getppid()}:x")
    assert not work.holder_alive(_dead_holder())
    assert work.holder_alive("some-other-host:1:x")
    assert not work.holder_alive(None)


def test_sqlite_commits_are_durable(tmp_path) -> None:
    """SQLite runs with synchronous=FULL (2): a commit is on disk before a flag or MOVE."""
    engine = db.open_database(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_only_redoable_work_commits_without_waiting_for_the_disk(tmp_path) -> None:
    """Stage work (inside redoable_work) commits with synchronous=NORMAL (1); the same
    pooled connection is FULL (2) again for whatever comes next, such as storing mail."""
    engine = db.open_database(f"sqlite:///{tmp_path / 'x.db'}", create=True)
    engine.pool.dispose()
    levels = []

    def level() -> int:
        with engine.connect() as connection:
            levels.append(id(connection.connection.dbapi_connection))
            return int(connection.exec_driver_sql("PRAGMA synchronous").scalar() or 0)

    assert level() == 2
    with db.redoable_work():
        assert level() == 1
    assert level() == 2
    assert len(set(levels)) == 1  # one pooled connection, switched each time
    engine.dispose()


def test_the_stages_run_as_redoable_work(tmp_path) -> None:
    """What a stage commits may be redone; storing the mail before it is durable."""
    from sqlalchemy.orm import Session

    from intake.app import App
    from intake.stages import STAGES, Stage, register
    from intake.worker import import_path
    from tests.conftest import make_settings
    from tests.intake.test_stages import compose

    seen: list[int] = []

    def probe(app: App, session: Session, submission_id: int) -> None:
        seen.append(int(session.connection().exec_driver_sql("PRAGMA synchronous").scalar()))

    register(Stage("probe", probe))
    try:
        app = App(make_settings(f"sqlite:///{tmp_path / 'i.db'}"))
        (tmp_path / "a.eml").write_bytes(compose(1))
        with app.pipeline(acks=False) as pipeline:
            import_path(pipeline, tmp_path / "a.eml")
            with app.sessions() as session:
                durable = session.connection().exec_driver_sql("PRAGMA synchronous").scalar()
            pipeline.read_pending()
        assert durable == 2 and seen == [1]
        app.close()
    finally:
        STAGES.pop("probe")


def test_a_claim_finds_its_rows_by_id_not_by_walking_the_stage(tmp_path) -> None:
    """Claiming on SQLite touches the candidate rows through the primary key, so a
    claim costs the same with 100 or 100,000 submissions done before it."""
    from sqlalchemy import event

    engine = db.open_database(f"sqlite:///{tmp_path / 'plan.db'}")
    sessions = db.make_session_factory(engine)
    _stored(sessions, 60)
    plans: list[str] = []

    def explain(conn, cursor, statement, params, context, executemany) -> None:
        if statement.startswith("UPDATE submission_stages") and "RETURNING" in statement:
            raw = conn.connection.dbapi_connection.cursor()
            plans.extend(row[-1] for row in raw.execute("EXPLAIN QUERY PLAN " + statement, params))
            raw.close()

    event.listen(engine, "before_cursor_execute", explain)
    with sessions() as session:
        claimed = work.claim(session, "read", "me:1:x", NOW, TTL)
    engine.dispose()
    assert len(claimed) == 50
    assert plans, "the claim ran no conditional UPDATE"
    assert all("PRIMARY KEY" in plan for plan in plans), plans


def test_largest_first_orders_by_stored_size_then_id(sessions) -> None:
    """The read stage hands the workers the largest messages of a batch first; equal
    sizes keep their order of arrival, and ids of no stored message come last."""
    bodies = [b"x" * 10, b"x" * 300, b"x" * 300, b"x" * 50]
    items = [
        repo.RawItem(
            raw=b"Subject: s\r\n\r\n" + body,
            sha256=f"{n:064x}",
            message_id=f"<size-{n}@x>",
            message_id_derived=False,
            source="test",
            fetched_at=NOW,
        )
        for n, body in enumerate(bodies)
    ]
    with sessions() as session:
        ids = [s.submission_id for s in repo.store_raws(session, items, "KIL", stages=("read",))]
        missing = max(ids) + 100
        ordered = work.largest_first(session, [*ids, missing])
    assert ordered == [ids[1], ids[2], ids[3], ids[0], missing]
