"""A poll's stages in a second process: everything read and acknowledged once, even
when that process is killed halfway (SQLite and PostgreSQL, real Dovecot and SMTP)."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import time
from collections import Counter

import pytest
from sqlalchemy import select

from intake.app import App
from intake.worker import poll_once
from store import work
from store.models import Submission
from tests.conftest import imap_section, make_settings, smtp_section
from tests.intake.test_poll import AUG, compose
from tests.support import Dovecot, SmtpServer

MESSAGES = 40


@pytest.fixture
def two_process_app(dovecot: Dovecot, smtp: SmtpServer, db_url: str):
    settings = make_settings(
        db_url,
        inbox=imap_section(dovecot, batch_size=4),
        env={"TEST_IMAP_PASSWORD": dovecot.password},
        extra="\n[stages]\nprocesses = 2\nbatch = 4\n" + smtp_section(smtp),
    )
    app = App(settings)
    yield app
    app.close()


def _stage_processes() -> list[multiprocessing.Process]:
    return [p for p in multiprocessing.active_children() if p.name == "intake-stages"]


def _poll(app: App, on_batch=lambda: None):  # type: ignore[no-untyped-def]
    with app.pipeline() as pipeline:
        return poll_once(pipeline, app.inbox_factory(), on_batch=on_batch)


def _check_each_once(app: App, smtp: SmtpServer) -> None:
    with app.sessions() as session:
        subs = list(session.scalars(select(Submission)))
        assert len(subs) == MESSAGES and {s.status for s in subs} == {"parsed"}
        counts = work.stage_counts(session)
    assert all(states == {"done": MESSAGES} for states in counts.values()), counts
    sent = Counter(str(m.message["In-Reply-To"]) for m in smtp.messages)
    assert sorted(sent) == sorted(f"<msg-{n}@example.org>" for n in range(MESSAGES))
    assert set(sent.values()) == {1}


def test_a_poll_runs_its_stages_in_a_second_process(
    two_process_app: App, dovecot: Dovecot, smtp: SmtpServer
) -> None:
    """The stage process starts with the second stored batch and is gone when the poll
    returns; every message is read and acknowledged exactly once."""
    for n in range(MESSAGES):
        dovecot.append(compose(n), AUG)
    seen: list[int] = []
    report = _poll(two_process_app, lambda: seen.append(len(_stage_processes())))
    assert seen[0] == 0 and seen[1] == 1 and max(seen) == 1  # one more, from batch 2 on
    assert _stage_processes() == []
    assert report.stored == MESSAGES and report.read.read == MESSAGES
    _check_each_once(two_process_app, smtp)


def test_a_killed_stage_process_loses_nothing(
    two_process_app: App, dovecot: Dovecot, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGKILL the stage process while the poll fetches: the poll finishes its work
    itself (the dead process's claims are freed at once), says what happened, and
    nothing is read twice or acknowledged twice."""
    for n in range(MESSAGES):
        dovecot.append(compose(n), AUG)
    batches = [0]
    killed: list[int] = []

    def kill_after_third_batch() -> None:
        batches[0] += 1
        if batches[0] == 3:
            for process in _stage_processes():
                assert process.pid is not None
                os.kill(process.pid, signal.SIGKILL)
                killed.append(process.pid)

    report = _poll(two_process_app, kill_after_third_batch)
    assert killed
    assert "a stage process failed" in caplog.text
    assert report.stored == MESSAGES
    _check_each_once(two_process_app, smtp)


def test_a_poll_of_one_batch_starts_no_process(
    two_process_app: App, dovecot: Dovecot, smtp: SmtpServer
) -> None:
    """Most polls take in a message or two: they run their stages themselves."""
    for n in range(3):
        dovecot.append(compose(n), AUG)
    seen: list[int] = []
    report = _poll(two_process_app, lambda: seen.append(len(_stage_processes())))
    assert seen == [0] and report.read.read == 3


def test_a_fixed_clock_keeps_the_stages_in_the_polling_process(db_url: str) -> None:
    """A clock that cannot go to another process (a test's) means one process."""
    settings = make_settings(db_url, extra="[stages]\nprocesses = 2\n")
    fixed = App(settings, now=lambda: dataclasses.MISSING)  # type: ignore[arg-type, return-value]
    real = App(settings)
    try:
        assert fixed.pipeline().stage_processes == 1
        assert real.pipeline().stage_processes == 2
    finally:
        fixed.close()
        real.close()


def test_the_stage_process_reads_attachments_too(
    two_process_app: App, dovecot: Dovecot, smtp: SmtpServer
) -> None:
    """Mail with a Word file each: the stage process starts extraction workers of its
    own to read them, so every file is read once, with no failed attempt anywhere."""
    from sqlalchemy.orm import selectinload

    from store.work import StageRow
    from tests.conftest import DATA

    docx = (DATA / "docs" / "features.docx").read_bytes()
    for n in range(MESSAGES):
        dovecot.append(compose(n, attachment=docx), AUG)
    # A pause after each stored batch: the stage process claims reads while this
    # process is still fetching.
    report = _poll(two_process_app, lambda: time.sleep(0.3))
    assert report.stored == MESSAGES and report.read.read == MESSAGES
    assert report.read.failed == 0 and report.read.stages.errors == []
    with two_process_app.sessions() as session:
        subs = list(
            session.scalars(select(Submission).options(selectinload(Submission.attachments)))
        )
        assert {(len(s.attachments), s.attachments[0].parse_status) for s in subs} == {(1, "ok")}
        retried = list(
            session.scalars(
                select(StageRow).where((StageRow.attempts > 1) | StageRow.last_error.is_not(None))
            )
        )
        assert [(r.submission_id, r.stage, r.last_error) for r in retried] == []
    _check_each_once(two_process_app, smtp)
