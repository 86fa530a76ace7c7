"""Leases that heal: renewed by a heartbeat while held, taken over at once from the dead.

Real processes: ``intake poll`` is started as a child, SIGKILLed while it holds the
inbox lease and an acknowledgement claim, and ``intake poll`` runs again at once.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from intake.app import App
from intake.worker import run_cycle
from store import repo, work
from store.models import Ack, Lease
from tests.conftest import ROOT
from tests.intake.test_poll import AUG, compose
from tests.support import Dovecot, SmtpServer


def _config(app: App, dovecot: Dovecot, smtp: SmtpServer, path: Path) -> Path:
    path.write_text(
        f"""
[consultation]
name = "Keep it Local"
deadline = 2018-07-27T23:59:59
reference_prefix = "KIL"
[database]
url = "{app.settings.database.url}"
[imap]
host = "{dovecot.host}"
port = {dovecot.port}
security = "none"
username = "{dovecot.user}"
password_env = "TEST_IMAP_PASSWORD"
[smtp]
host = "{smtp.host}"
port = {smtp.port}
security = "none"
from = "keepitlocal@example.org"
timeout_s = 60
"""
    )
    return path


def _intake(config: Path, dovecot: Dovecot, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TEST_IMAP_PASSWORD": dovecot.password}
    return subprocess.Popen(
        [sys.executable, "-m", "intake", "--config", str(config), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_for_sending(app: App, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.sessions() as session:
            if session.scalar(select(Ack.id).where(Ack.status == "sending")):
                return
        time.sleep(0.1)
    raise AssertionError("the child never started sending")


def test_poll_after_sigkill_proceeds_at_once(
    ack_app: App, dovecot: Dovecot, smtp: SmtpServer, tmp_path: Path
) -> None:
    """GIVEN `intake poll` SIGKILLed while it holds the inbox lease and is sending an
    acknowledgement WHEN `intake poll` runs again at once THEN it takes the lease and the
    claim over, finishes the work, and the respondent gets one acknowledgement."""
    dovecot.append(compose(1), AUG)
    config = _config(ack_app, dovecot, smtp, tmp_path / "config.toml")
    smtp.delay_s = 30.0  # the child hangs in the SMTP exchange, lease and claim held
    child = _intake(config, dovecot, "poll")
    _wait_for_sending(ack_app)
    with ack_app.sessions() as session:
        holder = session.scalar(select(Lease.holder))
    assert holder is not None and f":{child.pid}:" in holder
    child.send_signal(signal.SIGKILL)
    child.communicate()
    smtp.delay_s = 0.0
    started = time.monotonic()
    again = _intake(config, dovecot, "poll")
    out, err = again.communicate(timeout=120)
    elapsed = time.monotonic() - started
    assert again.returncode == 0, err.decode()[-2000:]
    assert b"another process" not in err and elapsed < 30
    assert b"acknowledgements sent 1" in out, out
    messages = smtp.wait_for(1)
    assert [str(m.message["In-Reply-To"]) for m in messages] == ["<msg-1@example.org>"]


def test_heartbeat_keeps_the_lease_through_a_long_cycle(
    ack_app: App, dovecot: Dovecot, smtp: SmtpServer
) -> None:
    """A cycle longer than the lease's time-to-live keeps its lease: nobody else gets it."""
    for n in range(3):
        dovecot.append(compose(n), AUG)
    ttl = dt.timedelta(seconds=1.5)
    name = "poll:" + ack_app.inbox_factory()().name  # type: ignore[misc]
    seen: list[bool] = []

    def slow_batch(_count: int) -> None:
        time.sleep(3 * ttl.total_seconds())  # twice past the TTL
        with ack_app.sessions() as session:
            seen.append(work.take_lease_healing(session, name, "otherhost:1:x", ack_app.now(), ttl))

    holder = work.holder_id()
    with ack_app.pipeline() as pipeline:
        report = run_cycle(
            pipeline, ack_app.inbox_factory(), holder=holder, lease_ttl=ttl, progress=slow_batch
        )
    assert report.stored == 3 and seen == [False]
    with ack_app.sessions() as session:
        assert repo.lease_holder(session, name, ack_app.now()) is None  # released at the end
