"""Stages as jobs on PostgreSQL: pollers and processors as real processes, kills included.

Every test here uses PostgreSQL (the job queue is procrastinate's, in the same
database); the last one shows that SQLite keeps its in-process runner.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, func, select, text

from intake.app import App
from intake.cli import cli
from intake.config import load_settings
from intake.stages.queue import Dispatcher, run_processor
from intake.worker import import_path
from store.models import Ack, AckStatus, Submission
from store.work import StageRow, StageState
from tests.conftest import POSTGRES_URL, ROOT
from tests.intake.test_poll import AUG, compose
from tests.intake.test_worker import wait_until, write_config
from tests.support import Dovecot, SmtpServer


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema (the queue's tables land in it too)."""
    schema = f"q_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _config(tmp_path: Path, url: str, extra: str = "") -> Path:
    path = tmp_path / "queue.toml"
    path.write_text(f"""
[consultation]
name = "Keep it Local: call for evidence"
deadline = 2018-07-27T23:59:59
reference_prefix = "KIL"

[database]
url = "{url}"

[maildir]
path = "{tmp_path / 'inbox'}"

[worker]
concurrency = 1
stall_after_s = 4
sweep_every_s = 0.5
{extra}
""")
    return path


def _mail_folder(tmp_path: Path, count: int) -> Path:
    folder = tmp_path / "mail"
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True)
    for n in range(count):
        (folder / "new" / f"{n:04d}.test:2,").write_bytes(compose(n))
    return folder


def _stages(app: App, stage: str = "read") -> Counter[str]:
    with app.sessions() as session:
        rows = session.execute(
            select(StageRow.state, func.count()).where(StageRow.stage == stage).group_by(
                StageRow.state
            )
        )
        return Counter({state: int(n) for state, n in rows})


def _jobs(app: App, status: str = "todo") -> int:
    with app.sessions() as session:
        return int(
            session.scalar(
                text("SELECT count(*) FROM procrastinate_jobs WHERE status = :s"), {"s": status}
            )
            or 0
        )


@pytest.mark.postgres
def test_db_upgrade_creates_the_queue(tmp_path: Path, pg_url: str) -> None:
    """`intake db upgrade` on PostgreSQL creates procrastinate's tables beside ours."""
    config = _config(tmp_path, pg_url)
    result = CliRunner().invoke(cli, ["--config", str(config), "db", "upgrade"])
    assert result.exit_code == 0, result.output
    app = App(load_settings(config, {}))
    try:
        assert _jobs(app) == 0  # the table exists and is empty
    finally:
        app.close()


@pytest.mark.postgres
def test_a_stage_is_queued_once_however_often_the_sweep_runs(tmp_path: Path, pg_url: str) -> None:
    app = App(load_settings(_config(tmp_path, pg_url), {}))
    try:
        with app.pipeline(acks=False) as pipeline:
            import_path(pipeline, _mail_folder(tmp_path, 5))
        with Dispatcher(app) as dispatcher, Dispatcher(app) as other:
            assert dispatcher.dispatch() == 5
            assert dispatcher.dispatch() == 0
            assert other.dispatch() == 0  # a second sweeper, elsewhere
        assert _jobs(app) == 5
        assert _stages(app) == Counter({StageState.DUE: 5})
    finally:
        app.close()


def _run_processor_until(app: App, done: Callable[[], bool], timeout: float = 60) -> None:
    stopping = threading.Event()
    thread = threading.Thread(
        target=run_processor,
        kwargs={
            "make_app": lambda: App(app.settings),
            "concurrency": 1,
            "stopping": stopping,
            "name": "test-processor",
        },
    )
    thread.start()
    try:
        wait_until(done, timeout=timeout, what="the processor to finish the work")
    finally:
        stopping.set()
        thread.join(timeout=60)
    assert not thread.is_alive()


@pytest.mark.postgres
def test_a_processor_reads_what_was_queued_and_a_rerun_job_does_nothing(
    tmp_path: Path, pg_url: str
) -> None:
    app = App(load_settings(_config(tmp_path, pg_url), {}))
    try:
        with app.pipeline(acks=False) as pipeline:
            import_path(pipeline, _mail_folder(tmp_path, 4))
        with Dispatcher(app) as dispatcher:
            dispatcher.dispatch()
        _run_processor_until(
            app, lambda: _stages(app) == Counter({StageState.DONE: 4}) and _jobs(app) == 0
        )
        with app.sessions() as session:
            bodies = list(session.scalars(select(Submission.body_text).order_by(Submission.id)))
            first_id = session.scalar(select(func.min(Submission.id)))
            read_at = session.scalar(
                select(StageRow.updated_at).where(
                    StageRow.submission_id == first_id, StageRow.stage == "read"
                )
            )
        assert [b.strip() for b in bodies] == [f"Body of response {n}." for n in range(4)]
        # A job for a stage already done (a duplicate, a retry) leaves it as it is.
        with Dispatcher(app) as dispatcher:
            dispatcher._open()
            dispatcher._defer("read", int(first_id))
        assert _jobs(app) == 1
        _run_processor_until(app, lambda: _jobs(app) == 0)
        with app.sessions() as session:
            again = session.scalar(
                select(StageRow.updated_at).where(
                    StageRow.submission_id == first_id, StageRow.stage == "read"
                )
            )
        assert again == read_at
        assert _jobs(app, "succeeded") + _jobs(app, "todo") + _jobs(app, "doing") == 0
    finally:
        app.close()


class Proc:
    """``intake worker --role ROLE`` as a real process."""

    def __init__(self, config: Path, role: str, log: Path, password: str = "") -> None:
        env = dict(os.environ, TEST_IMAP_PASSWORD=password, PYTHONPATH=str(ROOT))
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "intake", "--config", str(config), "worker", "--role", role],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
            )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        if proc.proc.poll() is None:
            proc.proc.kill()
            proc.proc.wait(timeout=30)


@pytest.mark.postgres
@pytest.mark.slow
def test_a_poller_and_three_processors_do_everything_exactly_once(
    tmp_path: Path,
    pg_url: str,
    dovecot: Dovecot,
    smtp: SmtpServer,
    procs: list[Proc],
) -> None:
    """300 responses: each stored, read and acknowledged once; a processor killed mid-job."""
    total = 300
    for n in range(total):
        dovecot.append(compose(n), AUG)
    config = write_config(
        tmp_path,
        pg_url,
        dovecot,
        smtp,
        extra="\n[worker]\nconcurrency = 1\nstall_after_s = 4\nsweep_every_s = 0.5\n"
        "[stages]\nclaim_ttl_s = 20\n",
    )
    app = App(load_settings(config, {"TEST_IMAP_PASSWORD": dovecot.password}))
    password = dovecot.password
    try:
        CliRunner().invoke(cli, ["--config", str(config), "db", "upgrade"], catch_exceptions=False)
        processors = [
            Proc(config, "process", tmp_path / f"processor{i}.log", password) for i in range(3)
        ]
        procs.extend(processors)
        victim = processors[0]
        marker = f":{victim.proc.pid}:"
        poller = Proc(config, "poll", tmp_path / "poller.log", password)
        procs.append(poller)

        def victim_running() -> list[int]:
            with app.sessions() as session:
                return [
                    int(i)
                    for i in session.scalars(
                        select(StageRow.submission_id).where(
                            StageRow.state == StageState.RUNNING,
                            StageRow.claimed_by.contains(marker),
                        )
                    )
                ]

        wait_until(lambda: bool(victim_running()), timeout=120, what="the victim to hold a job")
        taken = victim_running()
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(timeout=30)

        def everything_done() -> bool:
            with app.sessions() as session:
                sent = session.scalar(
                    select(func.count()).select_from(Ack).where(Ack.status == AckStatus.SENT)
                )
            return _stages(app, "read").get(StageState.DONE, 0) == total and sent == total

        wait_until(everything_done, timeout=240, what="all 300 read and acknowledged")
        with app.sessions() as session:
            assert session.scalar(select(func.count()).select_from(Submission)) == total
            for submission_id in taken:
                state = session.scalar(
                    select(StageRow.state).where(
                        StageRow.submission_id == submission_id, StageRow.stage == "read"
                    )
                )
                assert state == StageState.DONE
        time.sleep(2)  # anything sent twice would have arrived by now
        recipients = Counter(addr for m in smtp.messages for addr in m.rcpt_tos)
        assert len(recipients) == total
        assert set(recipients.values()) == {1}
        assert _stages(app, "read").get(StageState.FAILED, 0) == 0
        status = CliRunner(env={"TEST_IMAP_PASSWORD": password}).invoke(
            cli, ["--config", str(config), "status"]
        )
        assert "job(s) running" in status.output and "last heartbeat" in status.output, (
            status.output
        )
        for proc in procs:
            if proc is not victim:
                assert proc.stop() == 0, proc.output()
    finally:
        app.close()


def test_sqlite_process_role_runs_the_stages_in_process(tmp_path: Path) -> None:
    """On SQLite `--role process` runs due stages itself (there is no queue to share)."""
    url = f"sqlite:///{tmp_path / 'intake.db'}"
    config = _config(tmp_path, url)
    app = App(load_settings(config, {}))
    try:
        with app.pipeline(acks=False) as pipeline:
            import_path(pipeline, _mail_folder(tmp_path, 3))
        assert _stages(app) == Counter({StageState.DUE: 3})
        proc = Proc(config, "process", tmp_path / "process.log")
        try:
            wait_until(
                lambda: _stages(app) == Counter({StageState.DONE: 3}),
                timeout=90,
                what="the in-process runner",
            )
        finally:
            assert proc.stop() == 0, proc.output()
        assert "running the stages in this process" in proc.output()
    finally:
        app.close()
