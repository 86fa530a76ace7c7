"""Polling a real Dovecot: every message stored once, flagged after commit, safe across crashes."""

from __future__ import annotations

import datetime as dt
import io
import os
import signal
import subprocess
import sys
import textwrap
from email.message import EmailMessage
from pathlib import Path

import docx
import pytest
from sqlalchemy import func, select

from intake.app import App
from intake.errors import MailboxAuthError, MailboxError
from intake.worker import poll_once
from store.models import Sighting, Submission
from tests.conftest import ROOT, imap_section, make_settings
from tests.support import Dovecot, compose_with_snail

UTC = dt.UTC
KEYWORD = "$IntakeStored"


def make_docx(paragraphs: list[str]) -> bytes:
    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def compose(n: int, *, attachment: bytes | None = None, subject: str | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = f"Respondent {n} <respondent{n}@example.org>"
    message["To"] = "keepitlocal@example.org"
    message["Subject"] = subject or f"Response {n}"
    message["Message-ID"] = f"<msg-{n}@example.org>"
    message["Date"] = "Fri, 27 Jul 2018 20:00:00 +0100"
    message.set_content(f"Body of response {n}.")
    if attachment is not None:
        message.add_attachment(
            attachment,
            maintype="application",
            subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
            filename=f"response-{n}.docx",
        )
    return message.as_bytes()


def poll(app: App):
    with app.pipeline() as pipeline:
        return poll_once(pipeline, app.inbox_factory())


def count(app: App, model=Submission) -> int:
    with app.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def submissions(app: App) -> list[Submission]:
    with app.sessions() as session:
        return list(session.scalars(select(Submission).order_by(Submission.id)))


AUG = dt.datetime(2018, 7, 20, 9, 0, tzinfo=UTC)


class TestPoll:
    def test_stores_each_once_and_flags(self, imap_app: App, dovecot: Dovecot) -> None:
        """GIVEN three messages WHEN polled twice THEN three rows, all flagged, none \\Seen."""
        uids = [
            dovecot.append(compose(n, attachment=make_docx([f"Evidence paragraph {n}."])), AUG)
            for n in range(3)
        ]
        report = poll(imap_app)
        assert report.stored == 3 and report.read.read == 3
        assert [s.reference for s in submissions(imap_app)] == [
            "KIL-00001",
            "KIL-00002",
            "KIL-00003",
        ]
        for uid in uids:
            flags = dovecot.flags("INBOX", uid)
            assert KEYWORD in flags and "\\Seen" not in flags
        second = poll(imap_app)
        assert second.stored == 0 and second.seen == 0
        assert count(imap_app) == 3

    def test_text_and_internaldate(self, imap_app: App, dovecot: Dovecot) -> None:
        """The attachment's text and the server's INTERNALDATE are stored."""
        dovecot.append(
            compose(1, attachment=make_docx(["Scale fail in our borough.", "Second point."])), AUG
        )
        poll(imap_app)
        (sub,) = submissions(imap_app)
        assert sub.received_at == AUG and sub.received_at_source == "internaldate"
        assert sub.timeliness == "on_time" and sub.body_text == "Body of response 1."
        (att,) = sub.attachments
        assert att.parse_status == "ok", att.error
        assert "Scale fail in our borough." in att.text and "Second point." in att.text
        assert att.detected_type.endswith("wordprocessingml.document")

    def test_bst_boundary(self, imap_app: App, dovecot: Dovecot) -> None:
        """22:59:59 UTC on 27 July 2018 is on time (23:59:59 BST); one second later is late."""
        last = dt.datetime(2018, 7, 27, 22, 59, 59, tzinfo=UTC)
        dovecot.append(compose(1), last)
        dovecot.append(compose(2), last + dt.timedelta(seconds=1))
        poll(imap_app)
        on_time, late = submissions(imap_app)
        assert (on_time.timeliness, late.timeliness) == ("on_time", "late")
        assert late.sent_in_time  # its Date header (20:00 BST) is before the deadline

    def test_new_mail_between_polls(self, imap_app: App, dovecot: Dovecot) -> None:
        """Only mail that arrived since the last poll is fetched."""
        dovecot.append(compose(1), AUG)
        poll(imap_app)
        dovecot.append(compose(2), AUG)
        report = poll(imap_app)
        assert report.seen == 1 and report.stored == 1 and count(imap_app) == 2

    def test_processed_folder(self, dovecot: Dovecot, db_url: str) -> None:
        """With processed_folder set, stored messages are moved there, and nothing twice."""
        dovecot.create_folder("Intake/Stored")
        settings = make_settings(
            db_url,
            inbox=imap_section(dovecot, processed_folder="Intake/Stored"),
            env={"TEST_IMAP_PASSWORD": dovecot.password},
        )
        app = App(settings)
        for n in range(3):
            dovecot.append(compose(n), AUG)
        assert poll(app).stored == 3
        assert dovecot.uids("INBOX") == [] and len(dovecot.uids("Intake/Stored")) == 3
        dovecot.append(compose(9), AUG)
        assert poll(app).stored == 1
        assert count(app) == 4 and len(dovecot.uids("Intake/Stored")) == 4
        app.close()

    def test_uidvalidity_change(self, imap_app: App, dovecot: Dovecot) -> None:
        """After the server renumbers the folder, nothing is stored twice and nothing skipped."""
        for n in range(3):
            dovecot.append(compose(n), AUG)
        poll(imap_app)
        old = dovecot.uidvalidity()
        dovecot.recreate_with_same_messages(keep_flags=False)
        assert dovecot.uidvalidity() != old
        dovecot.append(compose(7), AUG)
        report = poll(imap_app)
        assert report.seen == 4 and report.stored == 1 and report.duplicates == 3
        assert count(imap_app) == 4
        assert all(KEYWORD in dovecot.flags("INBOX", uid) for uid in dovecot.uids())
        assert poll(imap_app).seen == 0

    def test_oversize_message_keeps_header(self, dovecot: Dovecot, db_url: str) -> None:
        """A message over max_message_mb is recorded as too_large with its header."""
        settings = make_settings(
            db_url,
            inbox=imap_section(dovecot),
            extra="max_message_mb = 1",
            env={"TEST_IMAP_PASSWORD": dovecot.password},
        )
        app = App(settings)
        dovecot.append(compose(1, attachment=os.urandom(1_500_000)), AUG)
        dovecot.append(compose(2), AUG)
        assert poll(app).stored == 2
        big, small = submissions(app)
        assert big.status == "too_large" and big.header_only and "1 MB limit" in big.error
        assert big.subject == "Response 1" and big.size > 1_500_000
        assert small.status == "parsed"
        app.close()

    def test_real_client_message(self, imap_app: App, dovecot: Dovecot, tmp_path: Path) -> None:
        """A message composed by s-nail and delivered by dovecot-lda is stored with its file's text."""
        path = tmp_path / "Réponse – Anytown.docx"
        path.write_bytes(make_docx(["Community organisations transform lives."]))
        raw = compose_with_snail(
            "Jörg Müller <joerg@example.org>",
            "keepitlocal@example.org",
            "Réponse: Keep it Local – évidence",
            "Please find our response attached.",
            [path],
        )
        dovecot.deliver(raw)
        poll(imap_app)
        (sub,) = submissions(imap_app)
        assert sub.subject == "Réponse: Keep it Local – évidence"
        assert sub.sender_name == "Jörg Müller" and sub.sender_email == "joerg@example.org"
        assert "Please find our response attached." in sub.body_text
        (att,) = sub.attachments
        assert att.filename == "Réponse – Anytown.docx"
        assert "Community organisations transform lives." in att.text


class TestFaults:
    def test_wrong_password(self, dovecot: Dovecot, db_url: str) -> None:
        """Refused credentials are a MailboxAuthError naming the variable to fix."""
        settings = make_settings(
            db_url, inbox=imap_section(dovecot), env={"TEST_IMAP_PASSWORD": "wrong"}
        )
        app = App(settings)
        with pytest.raises(MailboxAuthError, match="TEST_IMAP_PASSWORD"):
            poll(app)
        app.close()

    def test_server_down(self, dovecot: Dovecot, db_url: str) -> None:
        """An unreachable server is a MailboxError, and nothing is stored."""
        settings = make_settings(
            db_url, inbox=imap_section(dovecot, port=1), env={"TEST_IMAP_PASSWORD": "x"}
        )
        app = App(settings)
        with pytest.raises(MailboxError, match="cannot connect"):
            poll(app)
        app.close()

    def test_crash_after_commit_before_flag(
        self, imap_app: App, dovecot: Dovecot, tmp_path: Path
    ) -> None:
        """GIVEN a poll killed (SIGKILL) after its commit and before the server flag
        WHEN polled again THEN each message is stored once and flagged."""
        for n in range(3):
            dovecot.append(compose(n), AUG)
        script = tmp_path / "crash.py"
        script.write_text(
            textwrap.dedent(f"""
            import os, signal, sys
            sys.path.insert(0, {str(ROOT)!r})
            from intake.app import App
            from intake.mail.imap import ImapInbox
            from intake.worker import poll_imap
            from tests.conftest import make_settings, imap_section

            class DiesBeforeFlag(ImapInbox):
                def mark_stored(self, uids):
                    if uids:
                        os.kill(os.getpid(), signal.SIGKILL)

            settings = make_settings({imap_app.settings.database.url!r}, inbox={{"imap": {{
                "host": "127.0.0.1", "port": {dovecot.port}, "security": "none",
                "username": {dovecot.user!r}, "password_env": "P", "batch_size": 2}}}},
                env={{"P": {dovecot.password!r}}})
            app = App(settings)
            with app.pipeline() as pipeline:
                poll_imap(pipeline, DiesBeforeFlag(settings.imap, max_message_bytes=10**8))
        """)
        )
        result = subprocess.run([sys.executable, str(script)], capture_output=True, timeout=120)
        assert result.returncode == -signal.SIGKILL, result.stderr.decode()
        assert count(imap_app) == 2  # the first batch was committed, then the process died
        assert not any(KEYWORD in dovecot.flags("INBOX", uid) for uid in dovecot.uids())
        report = poll(imap_app)
        assert report.stored == 1
        assert count(imap_app) == 3 and count(imap_app, Sighting) == 3
        assert all(KEYWORD in dovecot.flags("INBOX", uid) for uid in dovecot.uids())
        assert all(s.status == "parsed" for s in submissions(imap_app))
