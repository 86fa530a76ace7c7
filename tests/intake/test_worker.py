"""The worker as a real process against Dovecot and SMTP: unattended, through outages and signals."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from intake.app import App
from intake.config import load_settings
from intake.scheduler import digest_trigger
from intake.staff.daily import send_digest
from intake.worker import InboxBusy, holder_id, run_cycle
from store import repo
from store.models import Ack, PollRun, Submission
from tests.conftest import ROOT
from tests.intake.test_poll import AUG, compose
from tests.support import Dovecot, SmtpServer

UTC = dt.UTC
UK_ZONE = "Europe/London"


def write_config(
    tmp_path: Path,
    db_url: str,
    dovecot: Dovecot,
    smtp: SmtpServer,
    *,
    every_s: float = 1.0,
    extra: str = "",
) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[consultation]
name = "Keep it Local: call for evidence"
deadline = 2018-07-27T23:59:59
reference_prefix = "KIL"

[database]
url = "{db_url}"

[imap]
host = "{dovecot.host}"
port = {dovecot.port}
security = "none"
username = "{dovecot.user}"
password_env = "TEST_IMAP_PASSWORD"
batch_size = 5

[smtp]
host = "{smtp.host}"
port = {smtp.port}
security = "none"
from = "keepitlocal@example.org"
timeout_s = 5

[schedule]
poll_every_minutes = {every_s / 60}

[digest]
recipients = ["team@example.org"]
send_at = "23:59:59"
{extra}
""")
    return path


def wait_until(check: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class WorkerProcess:
    def __init__(self, config: Path, password: str, log: Path) -> None:
        env = dict(os.environ, TEST_IMAP_PASSWORD=password, PYTHONPATH=str(ROOT))
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "intake", "--config", str(config), "-vv", "worker"],
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
def worker_factory(tmp_path: Path, dovecot: Dovecot) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(config: Path, name: str = "worker") -> WorkerProcess:
        process = WorkerProcess(config, dovecot.password, tmp_path / f"{name}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait()


def counts(app: App) -> tuple[int, int]:
    with app.sessions() as session:
        subs = session.scalar(select(func.count()).select_from(Submission)) or 0
        sent = (
            session.scalar(select(func.count()).select_from(Ack).where(Ack.status == "sent")) or 0
        )
    return subs, sent


class TestWorkerProcess:
    def test_unattended_through_an_imap_outage(
        self, tmp_path, db_url, dovecot, smtp, worker_factory
    ) -> None:
        """GIVEN a running worker WHEN mail arrives, Dovecot dies and comes back
        THEN every message is stored and acknowledged once, and the outage is recorded."""
        config = write_config(tmp_path, db_url, dovecot, smtp)
        app = App(load_settings(config, {"TEST_IMAP_PASSWORD": dovecot.password}))
        worker = worker_factory(config)
        dovecot.append(compose(1), AUG)
        wait_until(lambda: counts(app) == (1, 1), what="first message acknowledged")
        dovecot.kill()
        with app.sessions() as session:
            wait_until(
                lambda: (
                    session.scalar(
                        select(func.count()).select_from(PollRun).where(PollRun.ok.is_(False))
                    )
                    or session.expire_all()
                ),
                what="a failed poll recorded",
            )
        dovecot.start()
        dovecot.append(compose(2), AUG)
        wait_until(
            lambda: counts(app) == (2, 2), timeout=60, what="second message after the outage"
        )
        assert worker.proc.poll() is None, worker.output()
        assert worker.stop() == 0
        assert len(smtp.messages) == 2
        # The whole run's debug log never contains the password.
        assert "poll failed" in worker.output() and dovecot.password not in worker.output()
        app.close()

    def test_sigterm_during_a_batch(self, tmp_path, db_url, dovecot, smtp, worker_factory) -> None:
        """SIGTERM mid-batch stops cleanly; a rerun finishes the work with nothing twice."""
        for n in range(40):
            dovecot.append(compose(n), AUG)
        config = write_config(tmp_path, db_url, dovecot, smtp)
        app = App(load_settings(config, {"TEST_IMAP_PASSWORD": dovecot.password}))
        worker = worker_factory(config)
        wait_until(lambda: counts(app)[0] >= 3, what="some messages stored")
        assert worker.stop() == 0, worker.output()
        assert "finishing the current message(s)" in worker.output()
        with app.sessions() as session:
            stored = session.scalar(select(func.count()).select_from(Submission))
            assert (
                repo.lease_holder(session, f"poll:{repo_name(app)}", dt.datetime.now(UTC)) is None
            )
        assert 0 < stored <= 40
        second = worker_factory(config, "again")
        wait_until(
            lambda: counts(app) == (40, 40), timeout=90, what="all 40 stored and acknowledged"
        )
        assert second.stop() == 0
        assert len(smtp.messages) == 40
        assert len({m.message["In-Reply-To"] for m in smtp.messages}) == 40
        app.close()

    def test_two_workers_never_both_poll(
        self, tmp_path, db_url, dovecot, smtp, worker_factory
    ) -> None:
        """Two workers on one database: every message once, and poll cycles never overlap."""
        if db_url.startswith("sqlite"):
            pass  # the same lease logic runs on both databases; both are exercised
        for n in range(20):
            dovecot.append(compose(n), AUG)
        config = write_config(tmp_path, db_url, dovecot, smtp, every_s=0.5)
        app = App(load_settings(config, {"TEST_IMAP_PASSWORD": dovecot.password}))
        first, second = worker_factory(config, "a"), worker_factory(config, "b")
        wait_until(lambda: counts(app) == (20, 20), timeout=90, what="all stored")
        for n in range(20, 25):
            dovecot.append(compose(n), AUG)
        wait_until(lambda: counts(app) == (25, 25), timeout=60, what="the later five stored")
        assert first.stop() == 0 and second.stop() == 0
        with app.sessions() as session:
            runs = list(session.scalars(select(PollRun).order_by(PollRun.started_at)))
        assert len(runs) >= 2
        for before, after in zip(runs, runs[1:], strict=False):
            assert before.finished_at is not None and before.finished_at <= after.started_at
        assert len(smtp.messages) == 25
        app.close()


def repo_name(app: App) -> str:
    from intake.worker import inbox_name

    return inbox_name(app.settings)


class TestLease:
    def test_second_holder_is_refused(self, imap_app: App) -> None:
        """While one process holds the inbox's lease, a cycle elsewhere is refused."""
        now = dt.datetime.now(UTC)
        with imap_app.sessions() as session:
            assert repo.take_lease(
                session, f"poll:{repo_name(imap_app)}", "other:1", now, dt.timedelta(minutes=5)
            )
        with imap_app.pipeline() as pipeline, pytest.raises(InboxBusy, match="other:1"):
            run_cycle(
                pipeline,
                imap_app.inbox_factory(),
                holder=holder_id(),
                lease_ttl=dt.timedelta(minutes=5),
            )

    def test_expired_lease_is_taken_over(self, imap_app: App) -> None:
        """A crashed holder's lease lapses and the next process takes it."""
        now = dt.datetime.now(UTC)
        with imap_app.sessions() as session:
            assert repo.take_lease(
                session, "x", "dead:1", now - dt.timedelta(hours=1), dt.timedelta(minutes=5)
            )
            assert not repo.take_lease(
                session, "x", "live:2", now - dt.timedelta(minutes=58), dt.timedelta(minutes=5)
            )
            assert repo.take_lease(session, "x", "live:2", now, dt.timedelta(minutes=5))
            assert repo.lease_holder(session, "x", now) == "live:2"


class TestDigestSchedule:
    @pytest.mark.parametrize(
        ("now", "expected"),
        [
            (
                dt.datetime(2018, 7, 26, 12, 0, tzinfo=UTC),
                dt.datetime(2018, 7, 27, 7, 0, tzinfo=UTC),
            ),  # BST
            (
                dt.datetime(2018, 12, 3, 12, 0, tzinfo=UTC),
                dt.datetime(2018, 12, 4, 8, 0, tzinfo=UTC),
            ),  # GMT
            (
                dt.datetime(2018, 10, 27, 12, 0, tzinfo=UTC),
                dt.datetime(2018, 10, 28, 8, 0, tzinfo=UTC),
            ),  # clocks go back
        ],
    )
    def test_send_at_is_uk_wall_clock(
        self, imap_app: App, now: dt.datetime, expected: dt.datetime
    ) -> None:
        """08:00 means 08:00 UK time in summer and in winter."""
        from dataclasses import replace

        settings = replace(
            imap_app.settings, digest=replace(imap_app.settings.digest, send_at=dt.time(8, 0))
        )
        trigger = digest_trigger(App(settings))
        assert trigger.get_next_fire_time(None, now) == expected

    def test_digest_sent_once_across_restart(
        self, ack_app: App, dovecot: Dovecot, smtp: SmtpServer
    ) -> None:
        """The scheduled digest for a day goes out once, even when the job runs again after a restart."""
        from dataclasses import replace

        dovecot.append(compose(1), AUG)
        with ack_app.pipeline() as pipeline:
            run_cycle(
                pipeline, ack_app.inbox_factory(), holder="t", lease_ttl=dt.timedelta(minutes=5)
            )
        smtp.clear()
        settings = replace(
            ack_app.settings,
            digest=replace(ack_app.settings.digest, recipients=("team@example.org",)),
        )
        mailer = App(settings).mailer()
        base = dt.datetime.now(UTC)
        clock = lambda: base  # noqa: E731 - the "restart" runs at the same send time
        first = send_digest(ack_app.sessions, settings, mailer, clock, scheduled=True)
        again = send_digest(ack_app.sessions, settings, mailer, clock, scheduled=True)
        assert first is not None and first.status == "sent" and again is None
        (digest,) = smtp.messages
        assert list(digest.rcpt_tos) == ["team@example.org"]
        text = digest.message.get_body(("plain",)).get_content()
        assert "KIL-00001" in text and "Response 1" in text
        dovecot.append(compose(2), AUG)
        with ack_app.pipeline() as pipeline:
            run_cycle(
                pipeline, ack_app.inbox_factory(), holder="t", lease_ttl=dt.timedelta(minutes=5)
            )
        smtp.clear()
        later = dt.datetime.now(UTC) + dt.timedelta(days=1)
        assert (
            send_digest(ack_app.sessions, settings, mailer, lambda: later, scheduled=True)
            is not None
        )
        text = smtp.messages[-1].message.get_body(("plain",)).get_content()
        assert "KIL-00002" in text and "KIL-00001" not in text.split("Needs attention")[0]


def test_idle_takes_new_mail_within_seconds(tmp_path, db_url, dovecot, smtp, worker_factory) -> None:
    """With [imap] idle = true, new mail is stored long before the next scheduled poll."""
    config = write_config(tmp_path, db_url, dovecot, smtp, every_s=600)
    text = config.read_text().replace("batch_size = 5\n", "batch_size = 5\nidle = true\n")
    config.write_text(text)
    app = App(load_settings(config, {"TEST_IMAP_PASSWORD": dovecot.password}))
    worker = worker_factory(config)

    def polled() -> bool:
        with app.sessions() as session:
            return (session.scalar(select(func.count()).select_from(PollRun)) or 0) >= 1

    wait_until(polled, what="the first poll")
    time.sleep(1.0)  # let the IDLE connection settle
    dovecot.append(compose(1), AUG)
    started = time.monotonic()
    wait_until(lambda: counts(app) == (1, 1), timeout=30, what="mail taken through IDLE")
    assert time.monotonic() - started < 30  # the scheduled poll is 10 minutes away
    assert worker.stop() == 0
    app.close()
