"""Stages end to end: one bad message never stops the others, failures are shown, reruns work.

Real Dovecot, real SMTP server, SQLite and PostgreSQL (``db_url``).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import delete, func, select

from intake.app import App
from intake.cli import cli
from intake.deadline import format_uk
from intake.pipeline import Pipeline
from intake.staff.daily import build_digest
from intake.staff.health import gather_health
from intake.worker import import_path, poll_once
from store import work
from store.models import Ack, Attachment, RawMessage, Submission
from store.work import StageRow
from tests.conftest import make_settings
from tests.intake.test_poll import AUG, compose
from tests.support import Dovecot, SmtpServer

LONG_TYPE = "application/x-" + "y" * 286  # 300 characters
LONG_NAME = "n" * 1996 + ".pdf"  # 2,000 characters


def poison() -> bytes:
    """NUL bytes in the body, a 300-character type, a 2,000-character name, bad UTF-8."""
    body = base64.encodebytes(b"before\x00after, a NUL in the text")
    attachment = base64.encodebytes(b"%PDF-1.4\n\x00\x00 not really a PDF")
    return (
        b"From: \xc3\x28 Bad \xff Name <poison@example.org>\r\n"
        b"To: keepitlocal@example.org\r\n"
        b"Subject: caf\xe9 \xff\xfe invalid\r\n"
        b"Message-ID: <poison@example.org>\r\n"
        b"Date: Fri, 27 Jul 2018 20:00:00 +0100\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + body + b"--b\r\n"
        b"Content-Type: " + LONG_TYPE.encode() + b"\r\n"
        b'Content-Disposition: attachment; filename="' + LONG_NAME.encode() + b'"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + attachment + b"--b--\r\n"
    )


def _poll(app: App, *, acks: bool = True):
    with app.pipeline(acks=acks) as pipeline:
        return poll_once(pipeline, app.inbox_factory())


def _subs(app: App) -> dict[str, Submission]:
    with app.sessions() as session:
        return {s.message_id: s for s in session.scalars(select(Submission))}


def test_poison_in_a_batch_does_not_stop_the_good_ones(
    ack_app: App, dovecot: Dovecot, smtp: SmtpServer
) -> None:
    """GIVEN a poison message between good ones in one fetch batch
    WHEN one cycle runs THEN the good ones are read and acknowledged, the poison one is
    read with its odd values cut and recorded, and the next cycle is undisturbed."""
    dovecot.append(compose(1), AUG)
    dovecot.append(poison(), AUG)
    dovecot.append(compose(2), AUG)
    report = _poll(ack_app)
    assert report.stored == 3
    subs = _subs(ack_app)
    for n in (1, 2):
        good = subs[f"<msg-{n}@example.org>"]
        assert (good.status, good.ack_status) == ("parsed", "sent")
    bad = subs["<poison@example.org>"]
    assert bad.status == "parsed", bad.error
    assert "\x00" not in (bad.body_text or "") and "after, a NUL" in (bad.body_text or "")
    (att,) = bad.attachments
    assert len(att.content_type) <= 200 and len(att.filename) <= 500
    assert "Stored with changes" in (att.error or "")
    assert "cut from" in (att.error or "")
    with ack_app.sessions() as session:
        poison_ack = session.scalar(select(Ack).where(Ack.submission_id == bad.id))
    # Its From header is undecodable, so there is no address to answer: recorded as such.
    assert poison_ack is not None and poison_ack.status == "suppressed"
    assert poison_ack.reason == "no valid address to reply to"
    assert sorted(str(m.message["In-Reply-To"]) for m in smtp.messages) == [
        "<msg-1@example.org>",
        "<msg-2@example.org>",
    ]
    dovecot.append(compose(3), AUG)
    again = _poll(ack_app)
    assert again.stored == 1 and again.read.read == 1 and again.read.failed == 0
    assert _subs(ack_app)["<msg-3@example.org>"].ack_status == "sent"


def _retry_at_once(app: App) -> App:
    settings = dataclasses.replace(
        app.settings,
        stages=dataclasses.replace(app.settings.stages, retry_after_s=0.0, max_attempts=2),
    )
    return App(settings)


def test_a_failing_stage_is_retried_then_failed_and_shown(
    ack_app: App, dovecot: Dovecot, smtp: SmtpServer, tmp_path: Path
) -> None:
    """A submission whose read keeps failing is failed after max_attempts, with the reason,
    in `intake list --failed`, `intake status` and the digest; the others are read and
    acknowledged; `intake reparse` makes it due again."""
    app = _retry_at_once(ack_app)
    for n in range(3):
        dovecot.append(compose(n), AUG)
    with app.pipeline() as pipeline:
        poll = poll_once(pipeline, app.inbox_factory())
    assert poll.read.read == 3
    # Now break one: its stored bytes are gone, so reading it again must fail.
    with app.sessions() as session:
        victim = session.scalar(
            select(Submission).where(Submission.message_id == "<msg-1@example.org>")
        )
        assert victim is not None
        session.execute(delete(RawMessage).where(RawMessage.submission_id == victim.id))
        session.commit()
    with app.pipeline() as pipeline:
        first = pipeline.read([victim.id])
        assert (first.read, first.failed) == (0, 1)
        second = pipeline.read_pending()
        assert (second.read, second.failed) == (0, 1)
    with app.sessions() as session:
        row = work.stage_state(session, victim.id, "read")
        assert row is not None and (row.state, row.attempts) == ("failed", 2)
        assert "NotFound" in (row.last_error or "")
        assert session.get(Submission, victim.id).status == "failed"
        health = gather_health(session, app.settings, app.now())
        digest = build_digest(session, app.settings, app.now(), None)
    assert any("NEEDS ATTENTION: KIL-00002 read failed after 2" in line for line in health.lines())
    assert any("KIL-00002: the read stage failed" in line for line in digest.attention_extra)
    # The others were acknowledged once each and stay done.
    assert sorted(str(m.message["In-Reply-To"]) for m in smtp.messages) == [
        f"<msg-{n}@example.org>" for n in range(3)
    ]
    config = tmp_path / "config.toml"
    config.write_text(
        "[consultation]\nname = 'K'\ndeadline = 2018-07-27T23:59:59\nreference_prefix = 'KIL'\n"
        f"[database]\nurl = '{app.settings.database.url}'\n[maildir]\npath = '{tmp_path}'\n"
    )
    # A second stage of the same submission fails too: one line, one record each.
    with app.sessions() as session:
        work.set_failed(session, victim.id, "ack", "relay refused: 550 no such user", app.now())
        session.commit()
    listed = CliRunner().invoke(cli, ["--config", str(config), "list", "--failed"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("KIL-00002 "))
    assert lines[row + 1].split()[:6] == ["ack", "stage", "FAILED", "after", "1", "attempt(s),"]
    assert lines[row + 1].endswith(": relay refused: 550 no such user")
    assert lines[row + 2].split()[:6] == ["read", "stage", "FAILED", "after", "2", "attempt(s),"]
    assert "NotFound" in lines[row + 2] and (
        " BST: " in lines[row + 2] or " GMT: " in lines[row + 2]
    )
    assert "KIL-00001" not in listed.output and "KIL-00003" not in listed.output
    as_json = CliRunner().invoke(cli, ["--config", str(config), "list", "--json"])
    assert as_json.exit_code == 0, as_json.output
    records = {r["reference"]: r for r in map(json.loads, as_json.output.splitlines()[1:])}
    assert records["KIL-00001"]["failed_stages"] == records["KIL-00003"]["failed_stages"] == []
    ack_failure, read_failure = records["KIL-00002"]["failed_stages"]
    assert {k: ack_failure[k] for k in ("stage", "attempts", "error")} == {
        "stage": "ack",
        "attempts": 1,
        "error": "relay refused: 550 no such user",
    }
    assert (read_failure["stage"], read_failure["attempts"]) == ("read", 2)
    assert "NotFound" in read_failure["error"]
    for failure in (ack_failure, read_failure):
        when = dt.datetime.fromisoformat(failure["failed_at"].replace("Z", "+00:00"))
        assert abs(when - app.now()) < dt.timedelta(minutes=5)
        assert failure["failed_at_uk"] == format_uk(when)
    status = CliRunner().invoke(cli, ["--config", str(config), "status"])
    assert "NEEDS ATTENTION: KIL-00002 read failed after 2 attempt(s): NotFound" in status.output
    assert "NEEDS ATTENTION: KIL-00002 ack failed after 1 attempt(s): relay refused" in (
        status.output
    )
    with app.sessions() as session:
        attention = build_digest(session, app.settings, app.now(), None).attention_extra
    assert any(line.startswith("KIL-00002: the ack stage failed after 1") for line in attention)
    assert any(line.startswith("KIL-00002: the read stage failed after 2") for line in attention)
    # A rerun asked by a person: due again, attempts from zero (and fails again here).
    rerun = CliRunner().invoke(cli, ["--config", str(config), "reparse", "KIL-00002"])
    assert rerun.exit_code == 0, rerun.output
    with app.sessions() as session:
        row = work.stage_state(session, victim.id, "read")
        assert row is not None and row.attempts == 1 and row.state == "due"
    app.close()


def test_no_ack_poll_sends_nothing_at_all(ack_app: App, dovecot: Dovecot, smtp: SmtpServer) -> None:
    """`poll --no-ack` stores and reads, but neither queues nor sends, even acks already due."""
    dovecot.append(compose(1), AUG)
    smtp.refuse = True
    _poll(ack_app)  # acknowledgement queued, refused: due again later
    smtp.refuse = False
    with ack_app.sessions() as session:
        session.execute(Ack.__table__.update().values(next_attempt_at=None))
        session.commit()
    dovecot.append(compose(2), AUG)
    report = _poll(ack_app, acks=False)
    assert report.stored == 1 and report.acks.sent == 0 and smtp.messages == []
    subs = _subs(ack_app)
    assert subs["<msg-2@example.org>"].ack_status == "off"
    with ack_app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Ack)) == 1
        stages = {(r.submission_id, r.stage) for r in session.scalars(select(StageRow))}
    assert (subs["<msg-2@example.org>"].id, "ack") not in stages
    _poll(ack_app)  # a normal cycle sends the one that was due
    assert [str(m.message["In-Reply-To"]) for m in smtp.messages] == ["<msg-1@example.org>"]


def test_import_acknowledges_only_with_ack(smtp: SmtpServer, db_url: str, tmp_path: Path) -> None:
    """A backfill through `intake import` sends nothing unless --ack is given."""
    from tests.conftest import smtp_section

    app = App(make_settings(db_url, extra="\n" + smtp_section(smtp)))
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "a.eml").write_bytes(compose(1))
    (folder / "b.eml").write_bytes(compose(2))
    with app.pipeline(acks=False) as pipeline:
        import_path(pipeline, folder / "a.eml")
        counts = pipeline.read_pending()
        assert pipeline.send_acks().sent == 0
    assert counts.read == 1 and smtp.messages == []
    assert _subs(app)["<msg-1@example.org>"].ack_status == "off"
    with app.pipeline(acks=True) as pipeline:
        import_path(pipeline, folder / "b.eml")
        pipeline.read_pending()
        assert pipeline.send_acks().sent == 1
    assert [str(m.message["In-Reply-To"]) for m in smtp.messages] == ["<msg-2@example.org>"]
    with app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Attachment)) == 0
    app.close()


def test_a_new_stage_is_one_registration(tmp_path: Path) -> None:
    """A stage registered with one line runs after read for every new submission, in the
    runner's transaction; with redo_after_read it is due again when a message is re-read."""
    from sqlalchemy.orm import Session

    from intake.stages import STAGES, Stage, register

    seen: list[tuple[int, str | None]] = []

    def example(app: App, session: Session, submission_id: int) -> None:
        submission = session.get(Submission, submission_id)
        assert submission is not None and submission.status == "parsed"  # read is done
        seen.append((submission_id, submission.subject))

    register(Stage("example", example, redo_after_read=True))
    try:
        app = App(make_settings(f"sqlite:///{tmp_path / 'i.db'}"))
        (tmp_path / "a.eml").write_bytes(compose(1))
        with app.pipeline(acks=False) as pipeline:
            import_path(pipeline, tmp_path / "a.eml")
            counts = pipeline.read_pending()
            assert counts.stages.done["read"] == 1 and counts.stages.done["example"] == 1
            assert seen == [(1, "Response 1")]
            pipeline.read([1])  # intake reparse
        assert seen == [(1, "Response 1"), (1, "Response 1")]
        with app.sessions() as session:
            counts_now = work.stage_counts(session)
            assert counts_now["read"] == {"done": 1} and counts_now["example"] == {"done": 1}
        app.close()
    finally:
        STAGES.pop("example")


def _import_three(pipeline: Pipeline, folder: Path) -> None:
    """Import three plain responses (numbers 1 to 3) from files in ``folder``."""
    for n in (1, 2, 3):
        (folder / f"{n}.eml").write_bytes(compose(n))
        import_path(pipeline, folder / f"{n}.eml")


def test_a_busy_database_puts_the_stage_back_without_counting_an_attempt(
    db_url: str, tmp_path: Path
) -> None:
    """Another connection holds what a stage must write (SQLite's write lock, a PostgreSQL
    row lock) past the wait: the stage is due again with no attempt counted and no failure
    reported, the other submissions are done, and the next pass finishes it."""
    from sqlalchemy import text, update
    from sqlalchemy.orm import Session

    from intake.stages import STAGES, Stage, register

    app = App(make_settings(db_url, extra="[stages]\nretry_after_s = 0\nbatch = 10\n"))
    sqlite = db_url.startswith("sqlite")
    locked: list[int] = []

    def example(app_: App, session: Session, submission_id: int) -> None:
        if submission_id != 2 or len(locked) >= 2:
            return
        locked.append(submission_id)
        blocker = app.engine.connect()
        try:
            if sqlite:
                blocker.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock
                session.execute(text("PRAGMA busy_timeout = 0"))
            else:
                blocker.execute(
                    select(Submission.id).where(Submission.id == 2).with_for_update()
                )
                session.execute(text("SET LOCAL lock_timeout = '50ms'"))
            session.execute(
                update(Submission).where(Submission.id == 2).values(subject="changed")
            )
        finally:
            if sqlite:
                blocker.exec_driver_sql("ROLLBACK")
                session.connection().exec_driver_sql("PRAGMA busy_timeout = 30000")
            else:
                blocker.rollback()
            blocker.close()

    register(Stage("example", example))
    try:
        with app.pipeline(acks=False) as pipeline:
            _import_three(pipeline, tmp_path)
            first = pipeline.read_pending().stages
            assert locked == [2, 2]  # the batch, then submission 2 on its own
            assert first.busy == 1
            assert first.done["example"] == 2 and "example" not in first.failed
            assert first.errors == []
            with app.sessions() as session:
                row = session.scalar(
                    select(StageRow).where(StageRow.submission_id == 2, StageRow.stage == "example")
                )
                assert row is not None
                assert (row.state, row.attempts) == ("due", 0)
                assert "lock" in (row.last_error or "").lower()
            again = pipeline.read_pending().stages
            assert again.done.get("example") == 1 and again.busy == 0
        with app.sessions() as session:
            assert work.stage_counts(session)["example"] == {"done": 3}
    finally:
        STAGES.pop("example")
        app.close()


def test_a_claim_on_a_busy_database_leaves_the_work_due_and_the_pass_goes_on(
    db_url: str, tmp_path: Path
) -> None:
    """While another connection holds the stage table (SQLite's write lock, a PostgreSQL
    table lock) past the wait, claiming fails: the pass reports it busy instead of
    raising, nothing is claimed or counted as an attempt, and the next pass does it all."""
    from sqlalchemy import event, text

    from intake.stages.runner import run_due

    app = App(make_settings(db_url))
    sqlite = db_url.startswith("sqlite")
    try:
        with app.pipeline(acks=False) as pipeline:
            _import_three(pipeline, tmp_path)

        def wait_little(dbapi_connection: object, _record: object) -> None:
            cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
            cursor.execute("PRAGMA busy_timeout = 0" if sqlite else "SET lock_timeout = '50ms'")
            cursor.close()
            if not sqlite:
                dbapi_connection.commit()  # type: ignore[attr-defined]

        app.engine.dispose()  # new connections, each waiting little for a lock
        event.listen(app.engine, "connect", wait_little)
        blocker = app.engine.connect()
        if sqlite:
            blocker.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock
        else:
            blocker.execute(text("LOCK TABLE submission_stages IN EXCLUSIVE MODE"))
        try:
            busy = run_due(app, stages=["read"])
        finally:
            blocker.rollback()
            blocker.close()
        assert busy.busy == 1
        assert busy.done == {} and busy.failed == {} and busy.errors == []
        with app.sessions() as session:
            rows = session.scalars(select(StageRow).where(StageRow.stage == "read")).all()
            assert {(row.state, row.attempts, row.claimed_by) for row in rows} == {
                ("due", 0, None)
            }
        again = run_due(app, stages=["read"])
        assert again.done == {"read": 3} and again.busy == 0
    finally:
        app.close()
