"""Tests proving the test-support servers in ``tests/support`` behave as documented."""

from __future__ import annotations

import email.policy
import imaplib
import os
import re
import smtplib
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from imap_tools import AND, MailBoxUnencrypted

from tests.support import (
    Dovecot,
    SmtpServer,
    compose_with_snail,
    dovecot_available,
    find_dovecot_lda,
    imap_quote,
    snail_available,
)

# Skipped only on a developer machine without these programs; CI installs them
# (scripts/system-deps.sh) and must run every test here.
_IN_CI = bool(os.environ.get("CI"))
needs_dovecot = pytest.mark.skipif(
    not dovecot_available() and not _IN_CI, reason="dovecot not installed"
)
needs_lda = pytest.mark.skipif(
    find_dovecot_lda() is None and not _IN_CI, reason="dovecot-lda not installed"
)
needs_snail = pytest.mark.skipif(
    not snail_available() and not _IN_CI, reason="s-nail not installed"
)


def make_raw(
    subject: str = "Response", message_id: str = "<r1@example.org>", body: str = "Hi"
) -> bytes:
    """A small RFC 5322 message with CRLF line endings."""
    return (
        "From: Resident <resident@example.org>\r\n"
        "To: consultation@example.gov\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: {message_id}\r\n"
        "Date: Tue, 05 Mar 2024 10:00:00 +0100\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"{body}\r\n"
    ).encode()


def parse(raw: bytes) -> EmailMessage:
    msg = BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    return msg


# ---------------------------------------------------------------------------- fixtures


# These shadow the session fixtures of tests/conftest.py on purpose: this module kills,
# restarts and resets its server, which must not disturb the shared one.


@pytest.fixture(scope="module")
def dovecot_server() -> Iterator[Dovecot]:
    if not dovecot_available():
        pytest.fail("dovecot is not installed: run `make test`, which installs it")
    with Dovecot() as server:
        yield server


@pytest.fixture
def dovecot(dovecot_server: Dovecot) -> Dovecot:
    """The module's Dovecot, running and with all folders emptied."""
    dovecot_server.start()  # no-op unless a test left it stopped
    dovecot_server.clear()
    return dovecot_server


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def smtp(smtp_server: SmtpServer) -> SmtpServer:
    """The module's SMTP server, running, empty and with fault modes off."""
    smtp_server.start()
    smtp_server.reset()
    return smtp_server


# ---------------------------------------------------------------------------- Dovecot


@pytest.mark.dovecot
@needs_dovecot
class TestDovecot:
    def test_starts_on_private_port_and_greets(self, dovecot: Dovecot) -> None:
        assert dovecot.running and dovecot.pid is not None
        assert dovecot.host == "127.0.0.1"
        assert dovecot.port not in (143, 993)
        with socket.create_connection((dovecot.host, dovecot.port), timeout=5) as sock:
            assert sock.makefile("rb").readline().startswith(b"* OK")

    def test_login_with_right_password(self, dovecot: Dovecot) -> None:
        conn = imaplib.IMAP4(dovecot.host, dovecot.port, timeout=10)
        try:
            typ, _ = conn.login(dovecot.user, dovecot.password)
            assert typ == "OK"
        finally:
            conn.logout()

    def test_login_with_wrong_password_fails(self, dovecot: Dovecot) -> None:
        conn = imaplib.IMAP4(dovecot.host, dovecot.port, timeout=10)
        try:
            with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
                conn.login(dovecot.user, dovecot.password + "-wrong")
        finally:
            conn.logout()

    def test_append_with_internaldate_reads_back(self, dovecot: Dovecot) -> None:
        when = datetime(2024, 3, 5, 10, 0, 0, tzinfo=timezone(timedelta(hours=1)))
        raw = make_raw()
        uid = dovecot.append(raw, when)
        assert dovecot.uids() == [uid]
        with dovecot.client() as conn:
            conn.select("INBOX", readonly=True)
            typ, data = conn.uid("FETCH", str(uid), "(INTERNALDATE)")
        assert typ == "OK"
        # Maildir keeps only the instant (file mtime); the server runs with TZ=UTC.
        assert b'INTERNALDATE "05-Mar-2024 09:00:00 +0000"' in data[0]
        [stored] = dovecot.messages()
        assert stored.uid == uid
        assert stored.internaldate == when
        assert stored.raw == raw

    def test_append_naive_date_is_utc_and_creates_folder(self, dovecot: Dovecot) -> None:
        uid = dovecot.append(make_raw(), datetime(2024, 1, 2, 3, 4, 5), folder="Intake/Stored")
        assert "Intake/Stored" in dovecot.folders()
        [stored] = dovecot.messages("Intake/Stored")
        assert stored.uid == uid
        assert stored.internaldate == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)

    def test_custom_keyword_can_be_stored_and_read(self, dovecot: Dovecot) -> None:
        uid = dovecot.append(make_raw())
        with dovecot.client() as conn:
            typ, _ = conn.select("INBOX")
            assert typ == "OK"
            permanent = conn.untagged_responses.get("OK", [])
            assert any(b"PERMANENTFLAGS" in line and b"\\*" in line for line in permanent)
            typ, _ = conn.uid("STORE", str(uid), "+FLAGS.SILENT", "($IntakeStored)")
            assert typ == "OK"
        assert dovecot.flags("INBOX", uid) == {"$IntakeStored"}
        # and flags can be given on APPEND
        uid2 = dovecot.append(make_raw(), flags=["$IntakeStored", "\\Flagged"])
        assert dovecot.flags("INBOX", uid2) == {"$IntakeStored", "\\Flagged"}

    def test_body_peek_does_not_set_seen(self, dovecot: Dovecot) -> None:
        uid = dovecot.append(make_raw())
        with dovecot.client() as conn:
            conn.select("INBOX")
            typ, data = conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
            assert typ == "OK" and isinstance(data[0], tuple)
        assert "\\Seen" not in dovecot.flags("INBOX", uid)
        with dovecot.client() as conn:
            conn.select("INBOX")
            conn.uid("FETCH", str(uid), "(BODY[])")
        assert "\\Seen" in dovecot.flags("INBOX", uid)

    def test_move_and_uidplus_advertised_after_login(self, dovecot: Dovecot) -> None:
        uid = dovecot.append(make_raw())
        dovecot.create_folder("Intake/Stored")
        with dovecot.client(login=False) as conn:
            conn.login(dovecot.user, dovecot.password)
            typ, data = conn.capability()
            assert typ == "OK"
            caps = set(data[0].decode().upper().split())
            assert {"MOVE", "UIDPLUS", "IDLE"} <= caps
            conn.select("INBOX")
            typ, _ = conn.uid("MOVE", str(uid), imap_quote("Intake/Stored"))
            assert typ == "OK"
        assert dovecot.uids() == []
        assert len(dovecot.uids("Intake/Stored")) == 1

    def test_imap_tools_client_works(self, dovecot: Dovecot) -> None:
        dovecot.append(make_raw(subject="Via imap_tools"))
        with MailBoxUnencrypted(dovecot.host, dovecot.port, timeout=10).login(
            dovecot.user, dovecot.password
        ) as mailbox:
            # imaplib/imap_tools keep the pre-login CAPABILITY list, which lacks MOVE;
            # clients must refresh it after login before choosing UID MOVE.
            assert "MOVE" not in mailbox.client.capabilities
            typ, data = mailbox.client.capability()
            assert typ == "OK" and "MOVE" in data[0].decode().upper().split()
            msgs = list(mailbox.fetch(AND(all=True), mark_seen=False))
        assert [m.subject for m in msgs] == ["Via imap_tools"]
        assert "\\Seen" not in dovecot.flags("INBOX", int(msgs[0].uid or 0))

    def test_reset_changes_uidvalidity(self, dovecot: Dovecot) -> None:
        dovecot.append(make_raw())
        dovecot.append(make_raw(), folder="Archive")
        before_inbox = dovecot.uidvalidity("INBOX")
        before_archive = dovecot.uidvalidity("Archive")
        assert dovecot.reset_mailbox("INBOX") != before_inbox
        assert dovecot.reset_mailbox("Archive") != before_archive
        assert dovecot.uidvalidity("INBOX") != before_inbox
        assert dovecot.uids("INBOX") == [] and dovecot.uids("Archive") == []
        # UIDs start over in the new UID space
        assert dovecot.append(make_raw()) == 1

    def test_recreate_with_same_messages(self, dovecot: Dovecot) -> None:
        when = datetime(2024, 3, 5, 9, 30, tzinfo=UTC)
        raws = [make_raw(message_id=f"<m{i}@example.org>", body=f"n{i}") for i in range(3)]
        for raw in raws:
            dovecot.append(raw, when, flags=["$IntakeStored"])
        before = dovecot.uidvalidity()
        new_uids = dovecot.recreate_with_same_messages("INBOX")
        assert dovecot.uidvalidity() != before
        after = dovecot.messages()
        assert [m.uid for m in after] == new_uids
        assert [m.raw for m in after] == raws
        assert all(m.internaldate == when for m in after)
        assert all(m.flags == {"$IntakeStored"} for m in after)

    def test_kill_then_start_keeps_mail(self, dovecot: Dovecot) -> None:
        uid = dovecot.append(make_raw(), flags=["$IntakeStored"])
        port, old_pid = dovecot.port, dovecot.pid
        dovecot.kill()
        assert not dovecot.running
        with pytest.raises(OSError):
            socket.create_connection((dovecot.host, port), timeout=2).close()
        dovecot.start()
        assert dovecot.port == port and dovecot.pid != old_pid
        assert dovecot.uids() == [uid]
        assert dovecot.flags("INBOX", uid) == {"$IntakeStored"}

    def test_restart_keeps_mail(self, dovecot: Dovecot) -> None:
        uid = dovecot.append(make_raw())
        assert dovecot.restart() is dovecot
        assert dovecot.uids() == [uid]

    def test_clear_empties_everything(self, dovecot: Dovecot) -> None:
        dovecot.append(make_raw())
        dovecot.append(make_raw(), folder="A/B/C")
        dovecot.create_folder("Empty")
        dovecot.clear()
        assert dovecot.folders() == ["INBOX"]
        assert dovecot.uids() == []

    @needs_lda
    def test_lda_delivery_lands_in_inbox_and_needs_noop(self, dovecot: Dovecot) -> None:
        with dovecot.client() as conn:
            conn.select("INBOX")
            dovecot.deliver(make_raw(subject="Delivered"), envelope_from="resident@example.org")
            conn.noop()  # make the already-selected session notice the new mail
            typ, data = conn.uid("SEARCH", "ALL")
            assert typ == "OK" and len(data[0].split()) == 1
        [stored] = dovecot.messages()
        assert parse(stored.raw)["Subject"] == "Delivered"
        assert "\\Seen" not in stored.flags

    @needs_lda
    def test_lda_delivery_into_folder(self, dovecot: Dovecot) -> None:
        dovecot.deliver(make_raw(), folder="Responses/Late")
        assert len(dovecot.uids("Responses/Late")) == 1
        assert dovecot.uids("INBOX") == []

    @needs_lda
    @needs_snail
    def test_snail_message_delivered_with_lda(self, dovecot: Dovecot, tmp_path: Path) -> None:
        doc = tmp_path / "Antwort.txt"
        doc.write_text("Wir stimmen zu.\n", encoding="utf-8")
        raw = compose_with_snail(
            "Resident <resident@example.org>",
            "consultation@example.gov",
            "Antwort zur Anhörung",
            "Siehe Anhang.\n",
            [doc],
        )
        dovecot.deliver(raw)
        [stored] = dovecot.messages()
        msg = parse(stored.raw)
        assert msg["Subject"] == "Antwort zur Anhörung"
        [part] = list(msg.iter_attachments())
        assert part.get_filename() == "Antwort.txt"


# ---------------------------------------------------------------------------- s-nail


@needs_snail
class TestSnail:
    def test_composes_mime_message_with_non_ascii(self, tmp_path: Path) -> None:
        text = tmp_path / "Stellungnahme Äpfel & Birnen.txt"
        text.write_text("Grüße aus München\n", encoding="utf-8")
        binary = tmp_path / "scan.pdf"
        payload = b"%PDF-1.4\n" + bytes(range(256)) * 4 + b"\n%%EOF\n"
        binary.write_bytes(payload)
        raw = compose_with_snail(
            "Jörg Müller <joerg@example.org>",
            ["consultation@example.gov"],
            "Stellungnahme zur Konsultation – Ä",
            "Hallo,\nanbei unsere Stellungnahme – danke.\n",
            [text, binary],
            extra_headers={"X-Consultation-Ref": "CONS-2024-07"},
        )
        # The client encoded everything itself: the header section is pure ASCII.
        head = raw.split(b"\n\n", 1)[0]
        head.decode("ascii")
        assert b"Stellungnahme zur Konsultation" in head
        assert re.search(rb"^Message-ID: <[^>]+@mua\.test>$", raw, re.M)
        assert re.search(rb"^Date: ", raw, re.M)
        assert re.search(rb"^User-Agent: s-nail", raw, re.M)

        msg = parse(raw)
        assert msg["Subject"] == "Stellungnahme zur Konsultation – Ä"
        # s-nail splits the name into two encoded-words, the second starting with an
        # encoded space; Python's parser also keeps the space between the words.
        display_name = msg["From"].addresses[0].display_name
        assert " ".join(display_name.split()) == "Jörg Müller"
        assert msg["From"].addresses[0].addr_spec == "joerg@example.org"
        assert msg["To"] == "consultation@example.gov"
        assert msg["X-Consultation-Ref"] == "CONS-2024-07"
        assert msg.is_multipart()
        body = msg.get_body(preferencelist=("plain",))
        assert body is not None
        assert body.get_content() == "Hallo,\nanbei unsere Stellungnahme – danke.\n"
        parts = {p.get_filename(): p for p in msg.iter_attachments()}
        assert set(parts) == {"Stellungnahme Äpfel & Birnen.txt", "scan.pdf"}
        assert parts["Stellungnahme Äpfel & Birnen.txt"].get_content() == "Grüße aus München\n"
        assert parts["scan.pdf"].get_payload(decode=True) == payload

    def test_rejects_missing_attachment(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError):
            compose_with_snail("a@example.org", "b@example.org", "s", "b", [tmp_path / "nope"])


# ---------------------------------------------------------------------------- SMTP


def make_ack() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "consultation@example.gov"
    msg["To"] = "Résident <resident@example.org>"
    msg["Subject"] = "Thank you – we received your response"
    msg.set_content("We received your response.\n")
    return msg


class TestSmtpServer:
    def test_records_message_sent_with_smtplib(self, smtp: SmtpServer) -> None:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
            refused = client.send_message(make_ack())
        assert refused == {}
        [received] = smtp.wait_for(1, timeout=5)
        assert received.mail_from == "consultation@example.gov"
        assert received.rcpt_tos == ("resident@example.org",)
        assert received.subject == "Thank you – we received your response"
        assert received.message["To"].addresses[0].display_name == "Résident"
        assert received.message.get_content() == "We received your response.\n"
        assert b"Subject: " in received.raw
        assert received.auth_user is None
        smtp.clear()
        assert smtp.messages == []

    def test_wait_for_times_out(self, smtp: SmtpServer) -> None:
        with pytest.raises(TimeoutError):
            smtp.wait_for(1, timeout=0.1)

    def test_refuse_at_rcpt(self, smtp: SmtpServer) -> None:
        smtp.refuse = True
        with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
            with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
                client.send_message(make_ack())
        assert info.value.recipients["resident@example.org"][0] == 451
        assert smtp.messages == []

    def test_refuse_at_data(self, smtp: SmtpServer) -> None:
        smtp.refuse, smtp.refuse_at = True, "DATA"
        with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
            with pytest.raises(smtplib.SMTPDataError) as info:
                client.send_message(make_ack())
        assert isinstance(info.value, smtplib.SMTPResponseException)
        assert info.value.smtp_code == 451
        assert smtp.messages == []

    def test_refuse_at_mail(self, smtp: SmtpServer) -> None:
        smtp.refuse, smtp.refuse_at = True, "MAIL"
        with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
            with pytest.raises(smtplib.SMTPSenderRefused) as info:
                client.send_message(make_ack())
        assert info.value.smtp_code == 451

    def test_refuse_can_be_switched_off(self, smtp: SmtpServer) -> None:
        smtp.refuse = True
        smtp.refuse = False
        with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
            client.send_message(make_ack())
        assert len(smtp.wait_for(1)) == 1

    def test_delay_makes_client_time_out(self, smtp: SmtpServer) -> None:
        smtp.delay_s = 1.0
        with smtplib.SMTP(smtp.host, smtp.port, timeout=0.3) as client:
            # smtplib turns the socket timeout into SMTPServerDisconnected
            with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
                client.send_message(make_ack())
        smtp.delay_s = 0.0
        with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
            client.send_message(make_ack())
        assert len(smtp.wait_for(1)) == 1

    def test_stop_and_start_on_same_port(self, smtp: SmtpServer) -> None:
        port = smtp.port
        smtp.stop()
        assert not smtp.running
        with pytest.raises(ConnectionRefusedError):
            smtplib.SMTP(smtp.host, port, timeout=5)
        assert smtp.start() is smtp
        assert smtp.port == port
        with smtplib.SMTP(smtp.host, port, timeout=10) as client:
            client.send_message(make_ack())
        assert len(smtp.wait_for(1)) == 1

    def test_auth(self) -> None:
        with SmtpServer(username="intake", password="pw-123", auth_required=True) as server:
            ack = make_ack()
            with smtplib.SMTP(server.host, server.port, timeout=10) as client:
                with pytest.raises(smtplib.SMTPSenderRefused) as info:
                    client.send_message(ack)
                assert info.value.smtp_code == 530
            with smtplib.SMTP(server.host, server.port, timeout=10) as client:
                with pytest.raises(smtplib.SMTPAuthenticationError):
                    client.login("intake", "wrong")
            with smtplib.SMTP(server.host, server.port, timeout=10) as client:
                client.login("intake", "pw-123")
                client.send_message(ack)
            [received] = server.wait_for(1)
            assert received.auth_user == "intake"
