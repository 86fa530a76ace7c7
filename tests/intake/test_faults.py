"""The fault matrix: real kills, real outages, real full disks. Nothing lost, nothing twice.

Each stage test runs a poll in a child process that SIGKILLs itself at that stage
(store, server flag, acknowledgement), then polls again normally and checks the
invariants. Two tests kill a real `intake poll` from outside, by its PID, in the
middle of real work: mid-fetch (a relay in front of Dovecot holds the FETCH reply
after a whole message) and mid-extraction (a worker has started the OCR of an image).
The invariants: every message stored once, every attachment with a final status, no
acknowledgement sent twice (except in the one documented window between the SMTP
server's acceptance and our commit, where at most one copy more goes out, with the
same Message-ID).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from intake.app import App
from intake.errors import MailboxError
from intake.mail.imap import ImapInbox
from intake.staff.daily import send_digest
from intake.worker import poll_imap, poll_once
from store import repo, work
from store.models import Ack, Attachment, RawMessage, Sighting, Submission
from tests.conftest import DATA, POSTGRES_URL, ROOT, imap_section, make_settings, smtp_section
from tests.intake.test_poll import AUG, KEYWORD, compose, make_docx
from tests.support import Dovecot, SmtpServer
from tests.support.imap_relay import FetchCutRelay

MESSAGES = 6

HARNESS = """
import os, signal, sys
sys.path.insert(0, {root!r})
from intake import pipeline, worker
from intake.staff import daily
from intake.mail import smtp as mailer, outbox, imap as poller
from intake.app import App
from intake.worker import poll_once
from store import repo
from tests.conftest import make_settings, smtp_section

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def after(module, name, times=1):
    original = getattr(module, name)
    calls = [0]
    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        calls[0] += 1
        if calls[0] >= times:
            die()
        return result
    setattr(module, name, wrapper)

def before(module, name, times=1):
    original = getattr(module, name)
    calls = [0]
    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] >= times:
            die()
        return original(*args, **kwargs)
    setattr(module, name, wrapper)

"""

# The extraction pool starts its workers with multiprocessing's forkserver, which
# imports the main module in each worker: the work must sit behind a __main__ guard.
MAIN = """
{hook}
settings = make_settings({url!r}, inbox={{"imap": {{"host": "127.0.0.1", "port": {port},
    "security": "none", "username": {user!r}, "password_env": "P", "batch_size": 2}}}},
    env={{"P": {password!r}}}, extra={smtp!r})
app = App(settings)
{action}
"""

POLL = """
with app.pipeline() as p:
    poll_once(p, app.inbox_factory())
"""

DIGEST = """
import datetime as dt, dataclasses
settings = dataclasses.replace(settings, digest=dataclasses.replace(settings.digest, recipients=("team@example.org",)))
app = App(settings)
daily.send_digest(app.sessions, settings, app.mailer(), app.now, scheduled=True)
"""

STAGES = {
    # stage: (hook installed in the child, what may legitimately be sent twice)
    "store-commit-before": ("before(repo, 'store_raws', times=2)", 0),
    "store-commit-after": ("after(repo, 'store_raws', times=2)", 0),
    "server-flag": ("after(poller.ImapInbox, 'mark_stored')", 0),
    "ack-send": ("before(mailer.SmtpConnection, 'send', times=2)", 0),
    "ack-commit": ("after(mailer.SmtpConnection, 'send', times=2)", 1),
}


def _harness(app: App, dovecot: Dovecot, smtp: SmtpServer, hook: str, action: str) -> str:
    main = MAIN.format(
        hook=hook,
        action=textwrap.dedent(action),
        url=app.settings.database.url,
        port=dovecot.port,
        user=dovecot.user,
        password=dovecot.password,
        smtp="\n" + smtp_section(smtp),
    )
    prelude = textwrap.dedent(HARNESS).format(root=str(ROOT))
    return prelude + '\nif __name__ == "__main__":\n' + textwrap.indent(main, "    ")


def _run_child(script: str, tmp_path: Path) -> subprocess.CompletedProcess[bytes]:
    path = tmp_path / f"child-{uuid.uuid4().hex[:6]}.py"
    path.write_text(script)
    return subprocess.run([sys.executable, str(path)], capture_output=True, timeout=180, cwd=ROOT)


def _poll(app: App) -> None:
    with app.pipeline() as pipeline:
        poll_once(pipeline, app.inbox_factory())


def _check_invariants(app: App, smtp: SmtpServer, extra_copies: int) -> None:
    with app.sessions() as session:
        subs = list(session.scalars(select(Submission)))
        assert len(subs) == MESSAGES
        assert {s.message_id for s in subs} == {f"<msg-{n}@example.org>" for n in range(MESSAGES)}
        assert all(s.status == "parsed" for s in subs)
        statuses = list(session.scalars(select(Attachment.parse_status)))
        assert len(statuses) == MESSAGES and "pending" not in statuses
        acks = list(session.scalars(select(Ack)))
        assert len(acks) == MESSAGES and {a.status for a in acks} == {"sent"}
    per_message: dict[str, int] = {}
    for received in smtp.messages:
        key = str(received.message["In-Reply-To"])
        per_message[key] = per_message.get(key, 0) + 1
    assert len(per_message) == MESSAGES
    assert sum(per_message.values()) <= MESSAGES + extra_copies
    assert max(per_message.values()) <= 1 + extra_copies


@pytest.mark.parametrize("stage", list(STAGES))
def test_kill_at_each_stage(
    stage: str, ack_app: App, dovecot: Dovecot, smtp: SmtpServer, tmp_path: Path
) -> None:
    """GIVEN a poll SIGKILLed at a stage WHEN polled again THEN nothing is lost or sent twice."""
    for n in range(MESSAGES):
        dovecot.append(compose(n, attachment=make_docx([f"Evidence {n}."])), AUG)
    hook, extra = STAGES[stage]
    result = _run_child(_harness(ack_app, dovecot, smtp, hook, POLL), tmp_path)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()[-3000:]
    for _ in range(2):
        _poll(ack_app)
    _check_invariants(ack_app, smtp, extra)


def _config_file(app: App, imap_port: int, smtp: SmtpServer, path: Path, extra: str = "") -> Path:
    """A config for a real ``intake poll``: the test's database, IMAP at ``imap_port``."""
    path.write_text(
        textwrap.dedent(f"""
        [consultation]
        name = "Keep it Local: call for evidence"
        deadline = 2018-07-27T23:59:59
        reference_prefix = "KIL"
        contact = "keepitlocal@example.org"
        [database]
        url = "{app.settings.database.url}"
        [limits]
        parse_timeout_s = 60
        [stages]
        lease_ttl_s = 120
        [imap]
        host = "127.0.0.1"
        port = {imap_port}
        security = "none"
        username = "{app.settings.imap.username if app.settings.imap else ""}"
        password_env = "TEST_IMAP_PASSWORD"
        batch_size = 2
        """)
        + smtp_section(smtp, timeout_s=30)
        + textwrap.dedent(extra)
    )
    return path


def _start_poll(
    config: Path, dovecot: Dovecot, log: Path | None = None, path_prefix: str = ""
) -> subprocess.Popen[bytes]:
    """``intake poll`` as a process of its own (its own session, so its workers can be
    reaped); output to ``log`` when given (its workers outlive it and would hold a pipe)."""
    env = {**os.environ, "TEST_IMAP_PASSWORD": dovecot.password}
    if path_prefix:
        env["PATH"] = path_prefix + os.pathsep + env["PATH"]
    with open(log or os.devnull, "wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "intake", "--config", str(config), "poll"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE if log is None else sink,
            stderr=subprocess.PIPE if log is None else subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_until(event: Callable[[], bool], child: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while not event():
        assert child.poll() is None, f"intake poll ended too soon: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"intake poll never got there: {log.read_text()}"
        time.sleep(0.02)


def _sigkill(child: subprocess.Popen[bytes]) -> None:
    """SIGKILL the ``intake poll`` process itself (not its workers), then reap it."""
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=60) == -signal.SIGKILL


def _reap_group(child: subprocess.Popen[bytes]) -> None:
    """Kill what the killed poll left behind (extraction workers), by its process group."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _poll_again(config: Path, dovecot: Dovecot) -> str:
    """Run ``intake poll`` to its end; it must succeed without waiting for any lease."""
    started = time.monotonic()
    again = _start_poll(config, dovecot)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err.decode()[-3000:]
    # The lease lasts 120 s: a poll that waited for the dead one's lease to lapse could
    # not finish sooner (and one refused as busy would not exit 0).
    assert time.monotonic() - started < 120
    return out.decode()


def _check_exactly_once(app: App, dovecot: Dovecot, smtp: SmtpServer) -> None:
    """Every message stored once, read, acknowledged once, flagged; watermark at the top."""
    _check_invariants(app, smtp, 0)
    assert (
        sorted(Counter(str(m.message["In-Reply-To"]) for m in smtp.messages).values())
        == [1] * MESSAGES
    )
    uids = dovecot.uids()
    assert len(uids) == MESSAGES
    assert all(KEYWORD in dovecot.flags("INBOX", uid) for uid in uids)
    with app.sessions() as session:
        assert session.scalar(select(func.count()).select_from(RawMessage)) == MESSAGES
        assert session.scalar(select(func.count()).select_from(Sighting)) == MESSAGES
        validity = dovecot.uidvalidity()
        mailbox = session.scalar(select(Sighting.mailbox).limit(1))
        assert mailbox is not None
        assert repo.uid_watermark(session, mailbox, validity) == max(uids)
        assert sorted(session.scalars(select(Sighting.uid))) == uids
        assert (
            list(session.scalars(select(work.StageRow).where(work.StageRow.state != "done"))) == []
        )


def _stored_count(app: App) -> int:
    with app.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(RawMessage)) or 0)


@pytest.mark.parametrize(
    ("cut_after", "stored_before"),
    [(1, 0), (3, 2)],
    ids=["first-batch", "second-batch"],
)
def test_kill_mid_fetch(
    cut_after: int,
    stored_before: int,
    ack_app: App,
    dovecot: Dovecot,
    smtp: SmtpServer,
    tmp_path: Path,
) -> None:
    """GIVEN a real `intake poll` SIGKILLed after the server sent the whole FETCH response
    of message ``cut_after`` and while it waits for the rest of that FETCH (batches of 2)
    WHEN `intake poll` runs again at once THEN it exits 0 in under 120 s (the 120 s lease
    is not waited for), stores the messages the dead poll had not committed, and every
    message ends stored once, read, acknowledged once at the SMTP server and flagged on
    the IMAP server, with the watermark at the highest UID."""
    for n in range(MESSAGES):
        dovecot.append(compose(n, attachment=make_docx([f"Evidence {n}."])), AUG)
    with FetchCutRelay(dovecot.host, dovecot.port, cut_after=cut_after) as relay:
        config = _config_file(ack_app, relay.port, smtp, tmp_path / "config.toml")
        log = tmp_path / "killed-poll.log"
        child = _start_poll(config, dovecot, log)
        try:
            _wait_until(relay.tripped.is_set, child, log)
            _sigkill(child)
        finally:
            _reap_group(child)
        # Killed mid-fetch: the batches before the cut are committed, nothing after them.
        assert _stored_count(ack_app) == stored_before
        assert smtp.messages == []
        out = _poll_again(config, dovecot)
        assert f"{MESSAGES - stored_before} new, 0 already stored" in out, out
        _check_exactly_once(ack_app, dovecot, smtp)
        # A further poll finds nothing to do and sends nothing.
        assert "0 new, 0 already stored" in _poll_again(config, dovecot)
    assert len(smtp.messages) == MESSAGES


def _compose_png(n: int) -> bytes:
    message = EmailMessage()
    message["From"] = f"Respondent {n} <respondent{n}@example.org>"
    message["To"] = "keepitlocal@example.org"
    message["Subject"] = f"Response {n}"
    message["Message-ID"] = f"<msg-{n}@example.org>"
    message["Date"] = "Fri, 27 Jul 2018 20:00:00 +0100"
    message.set_content(f"Body of response {n}.")
    png = (DATA / "docs" / "photo.png").read_bytes()
    message.add_attachment(png, maintype="image", subtype="png", filename=f"photo-{n}.png")
    return message.as_bytes()


# Stands in for tesseract on the killed poll's PATH: it says the worker began the
# document, then never finishes; only --version (asked for the parser's name) answers.
_SLOW_TESSERACT = """#!/bin/sh
if [ "$1" = "--version" ]; then exec {real} "$@"; fi
echo $$ > {marker}.tmp && mv {marker}.tmp {marker}
exec sleep 300
"""


def test_kill_mid_extraction(
    ack_app: App, dovecot: Dovecot, smtp: SmtpServer, tmp_path: Path
) -> None:
    """GIVEN a real `intake poll` SIGKILLed once an extraction worker has begun reading a
    scanned image (its OCR program has started) WHEN `intake poll` runs again at once
    THEN it exits 0 in under 120 s (neither the 120 s inbox lease nor the dead poll's
    read claim is waited for), reads that image to a final status, and every message
    ends stored once, read, acknowledged once at the SMTP server and flagged, with the
    watermark at the highest UID."""
    real = shutil.which("tesseract")
    assert real is not None, "tesseract is needed (see README, Install)"
    for n in range(MESSAGES):
        body = _compose_png(n) if n == 2 else compose(n, attachment=make_docx([f"Evidence {n}."]))
        dovecot.append(body, AUG)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    marker = tmp_path / "ocr-began"
    fake = bin_dir / "tesseract"
    fake.write_text(_SLOW_TESSERACT.format(real=real, marker=marker))
    fake.chmod(0o755)
    config = _config_file(
        ack_app, dovecot.port, smtp, tmp_path / "config.toml", "\n[ocr]\nenabled = true\n"
    )
    log = tmp_path / "killed-poll.log"
    child = _start_poll(config, dovecot, log, path_prefix=str(bin_dir))
    try:
        _wait_until(marker.exists, child, log)
        _sigkill(child)
        # Killed mid-extraction: all six stored, the image's read claimed by the dead poll.
        assert _stored_count(ack_app) == MESSAGES
        with ack_app.sessions() as session:
            image_read = session.scalars(
                select(work.StageRow.state)
                .join(Submission, Submission.id == work.StageRow.submission_id)
                .where(
                    Submission.message_id == "<msg-2@example.org>", work.StageRow.stage == "read"
                )
            ).one()
        assert image_read == "running"
        out = _poll_again(config, dovecot)
    finally:
        _reap_group(child)
    assert "0 new, 0 already stored" in out, out
    _check_exactly_once(ack_app, dovecot, smtp)
    with ack_app.sessions() as session:
        image = session.scalars(
            select(Attachment).where(Attachment.filename == "photo-2.png")
        ).one()
        assert image.parse_status not in ("pending", "failed", "timeout")


@pytest.mark.parametrize(
    ("hook", "copies"),
    [
        ("before(mailer.SmtpConnection, 'send')", 1),
        ("after(mailer.SmtpConnection, 'send')", 2),
    ],
    ids=["before-send", "after-send"],
)
def test_kill_at_digest_send(
    hook: str, copies: int, ack_app: App, dovecot: Dovecot, smtp: SmtpServer, tmp_path: Path
) -> None:
    """A digest killed around its send goes out again once at most (same day, same period)."""
    dovecot.append(compose(1), AUG)
    _poll(ack_app)
    smtp.clear()
    result = _run_child(_harness(ack_app, dovecot, smtp, hook, DIGEST), tmp_path)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()[-3000:]
    import dataclasses

    settings = dataclasses.replace(
        ack_app.settings,
        digest=dataclasses.replace(ack_app.settings.digest, recipients=("team@example.org",)),
    )
    mailer = App(settings).mailer()
    for _ in range(2):
        send_digest(ack_app.sessions, settings, mailer, ack_app.now, scheduled=True)
    assert len(smtp.messages) == copies
    assert len({m.message["Message-ID"] for m in smtp.messages}) == 1  # a copy is the same mail


class _DovecotDiesAfterFirstBatch(ImapInbox):
    """An inbox whose server is really killed after the first batch is flagged."""

    server: Dovecot

    def mark_stored(self, uids: list[int]) -> None:
        super().mark_stored(uids)
        self.server.kill()


def test_dovecot_killed_mid_fetch(ack_app: App, dovecot: Dovecot, smtp: SmtpServer) -> None:
    """Dovecot dies mid-poll: the poll fails cleanly; after a restart everything is stored once."""
    for n in range(MESSAGES):
        dovecot.append(compose(n, attachment=make_docx([f"Evidence {n}."])), AUG)
    inbox = _DovecotDiesAfterFirstBatch(ack_app.settings.imap, max_message_bytes=10**8)
    inbox.server = dovecot
    with ack_app.pipeline() as pipeline, pytest.raises(MailboxError):
        poll_imap(pipeline, inbox)
    dovecot.start()
    _poll(ack_app)
    _poll(ack_app)
    _check_invariants(ack_app, smtp, 0)


def test_smtp_timeout_then_recovery(dovecot: Dovecot, smtp: SmtpServer, db_url: str) -> None:
    """An SMTP server that hangs past the timeout delays acknowledgements; none is lost or doubled."""
    settings = make_settings(
        db_url,
        inbox=imap_section(dovecot),
        env={"TEST_IMAP_PASSWORD": dovecot.password},
        extra="\n" + smtp_section(smtp, timeout_s=1),
    )
    clock = [dt.datetime.now(dt.UTC)]
    app = App(settings, now=lambda: clock[0])
    for n in range(MESSAGES):
        dovecot.append(compose(n, attachment=make_docx([f"Evidence {n}."])), AUG)
    smtp.delay_s = 3.0
    _poll(app)
    with app.sessions() as session:
        assert (
            session.scalar(select(func.count()).select_from(Ack).where(Ack.status == "sent")) == 0
        )
    smtp.delay_s = 0
    for _ in range(6):
        clock[0] += dt.timedelta(hours=1)
        _poll(app)
    _check_invariants(app, smtp, 0)
    app.close()


def test_sqlite_locked_by_another_writer(
    tmp_path: Path, dovecot: Dovecot, smtp: SmtpServer
) -> None:
    """Another process holding SQLite's write lock makes the poll wait, not fail or lose mail."""
    db = tmp_path / "intake.db"
    settings = make_settings(
        f"sqlite:///{db}",
        inbox=imap_section(dovecot),
        env={"TEST_IMAP_PASSWORD": dovecot.password},
        extra="\n" + smtp_section(smtp),
    )
    app = App(settings)
    app.engine  # noqa: B018 - create the schema first
    for n in range(MESSAGES):
        dovecot.append(compose(n, attachment=make_docx([f"Evidence {n}."])), AUG)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import sqlite3, time
        conn = sqlite3.connect({str(db)!r}, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        print("locked", flush=True)
        time.sleep(3)
        conn.execute("COMMIT")
    """),
        ],
        stdout=subprocess.PIPE,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
    started = time.monotonic()
    _poll(app)
    assert time.monotonic() - started >= 1.0  # it really waited for the other writer
    assert holder.wait(timeout=30) == 0
    holder.stdout.close()
    _check_invariants(app, smtp, 0)
    app.close()


@pytest.mark.postgres
def test_postgres_connections_dropped_mid_poll(dovecot: Dovecot, smtp: SmtpServer) -> None:
    """PostgreSQL kills every connection of ours after each batch is flagged: the poll
    reconnects (the pool checks a connection before use) and stores every message; the
    next cycles read and acknowledge each once."""
    name = f"intake_fault_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{name}&application_name={name}"
    settings = make_settings(
        url,
        inbox=imap_section(dovecot),
        env={"TEST_IMAP_PASSWORD": dovecot.password},
        extra="\n" + smtp_section(smtp),
    )
    app = App(settings)
    try:
        for n in range(MESSAGES):
            dovecot.append(compose(n, attachment=make_docx([f"Evidence {n}."])), AUG)

        dropped: list[int] = []

        def drop() -> None:
            with admin.begin() as conn:
                # The function sits in the select list, so it runs only on the rows the
                # WHERE kept: never on anyone else's connection.
                killed = conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = :n"
                    ),
                    {"n": name},
                ).scalars()
                dropped.append(sum(1 for ok in killed if ok))

        class DropsConnections(ImapInbox):
            def mark_stored(self, uids: list[int]) -> None:
                super().mark_stored(uids)
                drop()

        inbox = DropsConnections(settings.imap, max_message_bytes=10**8)
        with app.pipeline() as pipeline:
            report = poll_imap(pipeline, inbox)
        # The fault was real: each batch's flag was followed by killed connections.
        assert len(dropped) == 2 and all(killed >= 1 for killed in dropped)
        assert report.stored == MESSAGES
        _poll(app)
        _poll(app)
        _check_invariants(app, smtp, 0)
    finally:
        app.close()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def _small_filesystem(path: Path, size_kb: int) -> bool:
    """Mount a tmpfs of ``size_kb`` at ``path`` (root only); False when it cannot be done."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    return (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)],
            capture_output=True,
        ).returncode
        == 0
    )


def test_disk_full(dovecot: Dovecot, smtp: SmtpServer) -> None:
    """The database's disk fills mid-poll: the poll fails, nothing is half-stored, and once
    there is room again every message is stored once."""
    folder = Path(tempfile.mkdtemp(prefix="intake-full-"))
    mounted = _small_filesystem(folder, 1024)
    try:
        settings = make_settings(
            f"sqlite:///{folder / 'intake.db'}",
            inbox=imap_section(dovecot),
            env={"TEST_IMAP_PASSWORD": dovecot.password},
            extra="\n" + smtp_section(smtp),
        )
        big = os.urandom(300_000)
        for n in range(MESSAGES):
            dovecot.append(compose(n, attachment=big + bytes([n])), AUG)
        if mounted:
            app = App(settings)
            with pytest.raises(Exception, match="(?i)full|disk"):
                _poll(app)
            app.close()
            with sqlite3.connect(folder / "intake.db") as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
                stored = conn.execute("SELECT count(*) FROM submissions").fetchone()[0]
                raws = conn.execute("SELECT count(*) FROM raw_messages").fetchone()[0]
            assert stored == raws < MESSAGES  # never a submission without its raw bytes
            subprocess.run(["mount", "-o", "remount,size=65536k", str(folder)], check=True)
        else:
            # Not root: cap the file size of a child process instead (RLIMIT_FSIZE).
            script = textwrap.dedent(f"""
                import resource, signal, sys
                sys.path.insert(0, {str(ROOT)!r})
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))
                from intake.app import App
                from intake.worker import poll_once
                from tests.conftest import make_settings, smtp_section
                settings = make_settings({settings.database.url!r}, inbox={{"imap": {{"host": "127.0.0.1",
                    "port": {dovecot.port}, "security": "none", "username": {dovecot.user!r},
                    "password_env": "P"}}}}, env={{"P": {dovecot.password!r}}})
                app = App(settings)
                with app.pipeline() as p:
                    poll_once(p, app.inbox_factory())
            """)
            result = subprocess.run(
                [sys.executable, "-c", script], capture_output=True, timeout=120
            )
            error = result.stderr.lower()
            assert result.returncode != 0 and (b"full" in error or b"large" in error), error[-2000:]
        app = App(settings)
        _poll(app)
        _poll(app)
        _check_invariants(app, smtp, 0)
        app.close()
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=False)
        shutil.rmtree(folder, ignore_errors=True)
