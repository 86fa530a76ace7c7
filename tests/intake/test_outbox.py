"""Acknowledgements end to end: Dovecot in, a real SMTP server out, once and only once."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import textwrap
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from intake.app import App
from intake.worker import poll_once
from store.models import Ack
from tests.conftest import DATA, ROOT, imap_section, make_settings, smtp_section
from tests.intake.test_poll import AUG, compose, make_docx, submissions
from tests.intake.test_worker import write_config
from tests.support import Dovecot, SmtpServer
from tests.support.corpus import REPO_CORPUS

UTC = dt.UTC
ROBOT_FILES = [
    *sorted((DATA / "robots").glob("*.eml")),
    REPO_CORPUS / "emails" / "mikelmail__multi_address_bounce1.eml",
]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now


def poll(app: App, *, acks: bool = True):
    with app.pipeline(acks=acks) as pipeline:
        return poll_once(pipeline, app.inbox_factory())


def acks(app: App) -> list[Ack]:
    with app.sessions() as session:
        return list(session.scalars(select(Ack).order_by(Ack.id)))


def robot(n: int, **headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = headers.pop("From", f"someone{n}@example.net")
    message["Subject"] = f"Automatic reply {n}"
    message["Message-ID"] = f"<robot-{n}@example.net>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("I am out of the office.")
    return message.as_bytes()


def with_clock(app: App, clock: Clock) -> App:
    other = App(app.settings, now=clock)
    return other


class TestHappyPath:
    def test_one_ack_per_submission(self, ack_app: App, dovecot: Dovecot, smtp: SmtpServer) -> None:
        """GIVEN two responses WHEN polled twice THEN exactly one acknowledgement each."""
        message = compose(1, attachment=make_docx(["Local delivery works."]))
        message = message.replace(b"Subject:", b"Reply-To: office@anytown.gov.uk\nSubject:", 1)
        dovecot.append(message, AUG)
        dovecot.append(compose(2), AUG)
        report = poll(ack_app)
        assert report.acks.sent == 2
        assert poll(ack_app).acks.sent == 0
        received = smtp.messages
        assert len(received) == 2
        first = received[0]
        assert list(first.rcpt_tos) == ["office@anytown.gov.uk"]
        assert first.message["Subject"] == "Re: Response 1 [KIL-00001]"
        assert first.message["In-Reply-To"] == "<msg-1@example.org>"
        assert first.message["Auto-Submitted"] == "auto-replied"
        body = first.message.get_body(("plain",)).get_content()
        assert "KIL-00001" in body and "response-1.docx: received and read" in body
        assert "Fri 20 Jul 2018 10:00:00 BST" in body
        assert [a.status for a in acks(ack_app)] == ["sent", "sent"]
        assert {s.ack_status for s in submissions(ack_app)} == {"sent"}

    def test_unreadable_file_words(self, ack_app: App, dovecot: Dovecot, smtp: SmtpServer) -> None:
        """A damaged Word file is named in the acknowledgement with what to do."""
        dovecot.append(compose(1, attachment=b"PK\x03\x04 this is not really a zip"), AUG)
        poll(ack_app)
        body = smtp.messages[0].message.get_body(("plain",)).get_content()
        assert "response-1.docx: received, but we could not read it" in body
        assert "send the files we could not read again" in body

    def test_late_words(self, ack_app: App, dovecot: Dovecot, smtp: SmtpServer) -> None:
        """A late response is told it was late."""
        dovecot.append(compose(1), dt.datetime(2018, 7, 27, 23, 0, 0, tzinfo=UTC))
        poll(ack_app)
        body = smtp.messages[0].message.get_body(("plain",)).get_content()
        assert "after the deadline" in body

    def test_no_ack_backfill_is_never_acknowledged_later(
        self, ack_app: App, dovecot: Dovecot, smtp: SmtpServer
    ) -> None:
        """poll --no-ack stores without acknowledging, and a later poll does not catch up."""
        dovecot.append(compose(1), AUG)
        poll(ack_app, acks=False)
        dovecot.append(compose(2), AUG)
        poll(ack_app)
        assert [m.message["Subject"] for m in smtp.messages] == ["Re: Response 2 [KIL-00002]"]
        assert [s.ack_status for s in submissions(ack_app)] == ["off", "sent"]

    def test_without_smtp_nothing_is_queued(
        self, imap_app: App, dovecot: Dovecot, smtp: SmtpServer
    ) -> None:
        """Without an [smtp] section acknowledgements are off and nothing is queued."""
        dovecot.append(compose(1), AUG)
        poll(imap_app)
        assert acks(imap_app) == [] and smtp.messages == []
        assert submissions(imap_app)[0].ack_status == "off"


class TestRobots:
    @pytest.mark.parametrize(
        "headers",
        [
            {"Auto_Submitted": "auto-replied"},
            {"X_Autoreply": "yes"},
            {"Precedence": "bulk"},
            {"List_Id": "<news.example.net>"},
            {"From": "noreply@example.net"},
            {"From": "keepitlocal@example.org"},
            {"Return_Path": "<>"},
        ],
        ids=lambda h: next(iter(h)),
    )
    def test_robot_gets_nothing(
        self, ack_app: App, dovecot: Dovecot, smtp: SmtpServer, headers: dict[str, str]
    ) -> None:
        """An automatic message is stored but its acknowledgement is suppressed with a reason."""
        dovecot.append(robot(1, **headers), AUG)
        poll(ack_app)
        (ack,) = acks(ack_app)
        assert ack.status == "suppressed" and ack.reason
        assert smtp.messages == []

    @pytest.mark.parametrize("path", ROBOT_FILES, ids=lambda p: p.name)
    def test_real_robot_mail(
        self, ack_app: App, dovecot: Dovecot, smtp: SmtpServer, path: Path
    ) -> None:
        """Real bounces, auto-replies and list mail (ours, and the corpus's) get no acknowledgement."""
        dovecot.append(path.read_bytes(), AUG)
        poll(ack_app)
        assert [a.status for a in acks(ack_app)] == ["suppressed"]
        assert smtp.messages == []

    def test_rate_limit_per_sender(self, ack_app: App, dovecot: Dovecot, smtp: SmtpServer) -> None:
        """A fourth message from one sender in a day is not acknowledged."""
        for n in range(4):
            dovecot.append(compose(n).replace(f"respondent{n}@".encode(), b"same@"), AUG)
        poll(ack_app)
        assert [a.status for a in acks(ack_app)] == ["sent", "sent", "sent", "suppressed"]
        assert "rate limit" in acks(ack_app)[3].reason
        assert len(smtp.messages) == 3

    def test_bounce_of_our_ack_is_filed_with_it(
        self, ack_app: App, dovecot: Dovecot, smtp: SmtpServer
    ) -> None:
        """A delivery report about our acknowledgement marks it bounced and is not a new response."""
        dovecot.append(compose(1), AUG)
        poll(ack_app)
        ours = smtp.messages[0].message
        report = EmailMessage()
        report["From"] = "Mail Delivery System <MAILER-DAEMON@mx.example.org>"
        report["To"] = "keepitlocal@example.org"
        report["Subject"] = "Undelivered Mail Returned to Sender"
        report["Message-ID"] = "<dsn-1@mx.example.org>"
        report.set_content("This is the mail system. Your message could not be delivered.")
        report.add_attachment(
            f"Message-ID: {ours['Message-ID']}\nSubject: {ours['Subject']}\n".encode(),
            maintype="text",
            subtype="rfc822-headers",
        )
        report.replace_header(
            "Content-Type", report["Content-Type"].replace("multipart/mixed", "multipart/report")
        )
        dovecot.append(report.as_bytes(), AUG)
        poll(ack_app)
        original, bounce = sorted(submissions(ack_app), key=lambda s: s.id)
        assert original.ack_status == "ack_bounced"
        assert bounce.kind == "ack_bounce" and bounce.bounced_ack_id == acks(ack_app)[0].id
        assert len(smtp.messages) == 1  # the report itself is never acknowledged
        with ack_app.sessions() as session:
            from store import repo

            listed = list(session.scalars(repo.select_submissions()))
        assert [s.reference for s in listed] == [original.reference]


class TestOutages:
    def test_smtp_down_then_up(self, dovecot: Dovecot, smtp: SmtpServer, db_url: str) -> None:
        """GIVEN the SMTP server is down WHEN polled, then up and polled after the backoff
        THEN exactly one acknowledgement, later."""
        clock = Clock(dt.datetime(2018, 7, 20, 9, 0, tzinfo=UTC))
        settings = make_settings(
            db_url,
            inbox=imap_section(dovecot),
            env={"TEST_IMAP_PASSWORD": dovecot.password},
            extra="\n" + smtp_section(smtp),
        )
        app = App(settings, now=clock)
        dovecot.append(compose(1), AUG)
        smtp.stop()
        report = poll(app)
        assert report.acks.sent == 0 and report.acks.errors
        (ack,) = acks(app)
        assert ack.status == "pending" and ack.attempts == 1 and "cannot connect" in ack.reason
        smtp.start()
        assert poll(app).acks.sent == 0  # still inside the backoff
        clock.now += dt.timedelta(minutes=3)
        assert poll(app).acks.sent == 1
        assert poll(app).acks.sent == 0
        assert len(smtp.messages) == 1 and acks(app)[0].status == "sent"
        app.close()

    def test_refused_until_max_attempts_then_failed(
        self, dovecot: Dovecot, smtp: SmtpServer, db_url: str
    ) -> None:
        """A server that keeps refusing turns the acknowledgement failed after max_attempts."""
        clock = Clock(dt.datetime(2018, 7, 20, 9, 0, tzinfo=UTC))
        settings = make_settings(
            db_url,
            inbox=imap_section(dovecot),
            env={"TEST_IMAP_PASSWORD": dovecot.password},
            extra="\n" + smtp_section(smtp) + "[ack]\nmax_attempts = 3\n",
        )
        app = App(settings, now=clock)
        dovecot.append(compose(1), AUG)
        smtp.refuse = True
        for _ in range(4):
            poll(app)
            clock.now += dt.timedelta(hours=3)
        (ack,) = acks(app)
        assert ack.status == "failed" and ack.attempts == 3 and "451" in ack.reason
        assert submissions(app)[0].ack_status == "failed"
        app.close()


CRASH = """
import os, signal, sys
sys.path.insert(0, {root!r})
from intake.mail import smtp as mailer
from intake.app import App
from intake.worker import poll_once
from tests.conftest import make_settings, imap_section, smtp_section
from tests.support import SmtpServer

original = mailer.SmtpConnection.send
def send_then_die(self, message, recipients, envelope_from):
    {before}
    original(self, message, recipients, envelope_from)
    {after}
mailer.SmtpConnection.send = send_then_die

if __name__ == "__main__":  # the extraction pool's forkserver imports this module
    settings = make_settings({url!r}, inbox={{"imap": {{"host": "127.0.0.1", "port": {imap_port},
        "security": "none", "username": {user!r}, "password_env": "P"}}}}, env={{"P": {password!r}}},
        extra={smtp!r})
    app = App(settings)
    with app.pipeline() as pipeline:
        poll_once(pipeline, app.inbox_factory())
"""


@pytest.mark.parametrize(
    ("before", "after", "expected_copies"),
    [
        ("os.kill(os.getpid(), signal.SIGKILL)", "pass", 1),  # dies before the server has it
        ("pass", "os.kill(os.getpid(), signal.SIGKILL)", 2),  # dies after acceptance, before commit
    ],
    ids=["before-send", "after-send-before-commit"],
)
def test_crash_around_send(
    dovecot: Dovecot,
    smtp: SmtpServer,
    ack_app: App,
    tmp_path: Path,
    before: str,
    after: str,
    expected_copies: int,
) -> None:
    """A crash before sending sends one acknowledgement; a crash in the window between the
    server's acceptance and the commit sends at most one more, with the same Message-ID."""
    dovecot.append(compose(1), AUG)
    script = tmp_path / "crash.py"
    script.write_text(
        textwrap.dedent(CRASH).format(
            root=str(ROOT),
            before=before,
            after=after,
            url=ack_app.settings.database.url,
            imap_port=dovecot.port,
            user=dovecot.user,
            password=dovecot.password,
            smtp="\n" + smtp_section(smtp),
        )
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    (ack,) = acks(ack_app)
    assert ack.status == "sending"
    for _ in range(3):
        poll(ack_app)
    received = smtp.messages
    assert len(received) == expected_copies
    assert len({m.message["Message-ID"] for m in received}) == 1
    assert acks(ack_app)[0].status == "sent" and len(acks(ack_app)) == 1


class TestCommands:
    def test_resend_ack_is_explicit_and_recorded(
        self, ack_app: App, dovecot: Dovecot, smtp: SmtpServer, tmp_path: Path
    ) -> None:
        """`intake resend-ack` sends one more copy, says so in it, and records who asked."""
        from click.testing import CliRunner

        from intake.cli import cli
        from store.models import AuditEvent

        dovecot.append(compose(1), AUG)
        poll(ack_app)
        config = write_config(tmp_path, ack_app.settings.database.connect_url, dovecot, smtp)
        result = CliRunner().invoke(
            cli,
            ["--config", str(config), "resend-ack", "KIL-00001", "--reason", "lost in spam"],
            env={"TEST_IMAP_PASSWORD": dovecot.password},
        )
        assert result.exit_code == 0, result.output
        first, again = smtp.messages
        assert "sent again at your request" in again.message.get_body(("plain",)).get_content()
        assert first.message["Message-ID"] != again.message["Message-ID"]
        with ack_app.sessions() as session:
            (event,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "resend-ack"))
            assert event.reference == "KIL-00001" and event.detail == "lost in spam"
            assert [a.sequence for a in session.scalars(select(Ack).order_by(Ack.id))] == [0, 1]
        poll(ack_app)
        assert len(smtp.messages) == 2  # nothing more goes out on its own

    def test_digest_send(
        self, ack_app: App, dovecot: Dovecot, smtp: SmtpServer, tmp_path: Path
    ) -> None:
        """`intake digest --send` mails the digest, with its CSV, to the recipients."""
        from click.testing import CliRunner

        from intake.cli import cli

        dovecot.append(compose(1), AUG)
        poll(ack_app)
        smtp.clear()
        config = write_config(tmp_path, ack_app.settings.database.connect_url, dovecot, smtp)
        result = CliRunner().invoke(
            cli,
            ["--config", str(config), "digest", "--send"],
            env={"TEST_IMAP_PASSWORD": dovecot.password},
        )
        assert result.exit_code == 0, result.output
        (digest,) = smtp.messages
        assert list(digest.rcpt_tos) == ["team@example.org"]
        assert digest.message["Auto-Submitted"] == "auto-generated"
        names = [part.get_filename() for part in digest.message.iter_attachments()]
        assert len(names) == 1 and names[0].endswith(".csv")
