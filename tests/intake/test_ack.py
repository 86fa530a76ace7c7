"""The acknowledgement's words and headers, and the rules that keep robots out (pure)."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from intake.ack import AckAttachment, AckContent, own_mail_reason, render_ack, robot_reason

UTC = dt.UTC
OWN = {"keepitlocal@example.org"}
DEADLINE = dt.datetime(2018, 7, 27, 22, 59, 59, tzinfo=UTC)


class TestRobotReason:
    @pytest.mark.parametrize(
        ("headers", "sender", "fragment"),
        [
            ({"Auto-Submitted": "auto-replied"}, "a@b.org", "Auto-Submitted"),
            ({"Auto-Submitted": "auto-generated; owner-email=x"}, "a@b.org", "Auto-Submitted"),
            ({"Return-Path": "<>"}, "a@b.org", "Return-Path"),
            (
                {"Content-Type": "multipart/report; report-type=delivery-status"},
                "a@b.org",
                "report",
            ),
            ({"Precedence": "bulk"}, "a@b.org", "Precedence"),
            ({"Precedence": "junk"}, "a@b.org", "Precedence"),
            ({"Precedence": "list"}, "a@b.org", "Precedence"),
            ({"Precedence": "auto_reply"}, "a@b.org", "Precedence"),
            ({"List-Id": "<news.example.org>"}, "a@b.org", "mailing list"),
            ({"List-Unsubscribe": "<mailto:u@x>"}, "a@b.org", "mailing list"),
            ({"X-Autoreply": "yes"}, "a@b.org", "automatic reply"),
            ({"X-Autorespond": "yes"}, "a@b.org", "automatic reply"),
            ({"X-Auto-Response-Suppress": "All"}, "a@b.org", "automatic reply"),
            ({}, "MAILER-DAEMON@mx.example.org", "machine address"),
            ({}, "postmaster@example.org", "machine address"),
            ({}, "noreply@example.org", "machine address"),
            ({}, "no-reply@example.org", "machine address"),
            ({}, "do-not-reply@example.org", "machine address"),
            ({}, "keepitlocal@example.org", "own address (keepitlocal@example.org)"),
            ({"X-Intake-Ack": "KIL-00001"}, "relay@example.net", "own address"),
            ({}, "", "no valid address"),
            ({}, "not-an-address", "no valid address"),
        ],
    )
    def test_robots(self, headers: dict[str, str], sender: str, fragment: str) -> None:
        """Each robot signal suppresses the acknowledgement, with a reason that names it."""
        reason = robot_reason(headers, sender, "", OWN)
        assert reason is not None and fragment in reason

    @pytest.mark.parametrize(
        "headers",
        [
            {},
            {"Auto-Submitted": "no"},
            {"Precedence": "normal"},
            {"Content-Type": "multipart/mixed"},
        ],
    )
    def test_people(self, headers: dict[str, str]) -> None:
        """A person's mail (Auto-Submitted: no included) is acknowledged."""
        assert robot_reason(headers, "jane@anytown.gov.uk", "", OWN) is None

    def test_reply_to_is_checked_too(self) -> None:
        """A Reply-To pointing at a robot or at ourselves suppresses the loop."""
        assert robot_reason({}, "jane@anytown.gov.uk", "noreply@anytown.gov.uk", OWN)
        assert robot_reason({}, "jane@anytown.gov.uk", "keepitlocal@example.org", OWN)


class TestOwnMail:
    """Our own mail is recognised by address or by our acknowledgement's markers."""

    def test_our_address_as_sender_or_reply_to(self) -> None:
        """From or Reply-To one of our addresses, whatever the case, is our own mail."""
        assert own_mail_reason({}, "KeepItLocal@Example.org", "", OWN) == (
            "own address (KeepItLocal@Example.org)"
        )
        assert own_mail_reason({}, "jane@anytown.gov.uk", "keepitlocal@example.org", OWN)
        assert own_mail_reason({}, "jane@anytown.gov.uk", "", OWN) is None

    def test_a_copy_of_our_acknowledgement(self) -> None:
        """Our marker header, or our Message-ID on an auto-reply, is ours from any sender."""
        assert own_mail_reason({"X-Intake-Ack": "KIL-1"}, "x@example.net", "", OWN)
        ours = "<ack.KIL-00042.0.a1b2c3@example.org>"
        auto = {"Auto-Submitted": "auto-replied"}
        assert own_mail_reason(auto, "x@example.net", "", OWN, ours)
        assert own_mail_reason({}, "x@example.net", "", OWN, ours) is None
        assert own_mail_reason(auto, "x@example.net", "", OWN, "<other@example.net>") is None

    def test_rendered_ack_is_recognised_when_it_comes_back(self) -> None:
        """The headers our acknowledgement carries make a returned copy our own mail."""
        message = _render(_content())
        headers = {name: str(value) for name, value in message.items()}
        assert own_mail_reason(headers, "relay@example.net", "", set(), message["Message-ID"])


def _content(**changes) -> AckContent:
    values = dict(
        consultation="Keep it Local: call for evidence",
        reference="KIL-00042",
        to_addr="jane@anytown.gov.uk",
        to_name="Jane Smith",
        subject="Our response",
        original_message_id="<resp-001@anytown.gov.uk>",
        received_at=dt.datetime(2018, 7, 27, 21, 30, tzinfo=UTC),
        on_time=True,
        deadline=DEADLINE,
        attachments=[AckAttachment("response.pdf", "ok"), AckAttachment("annex.pdf", "encrypted")],
        contact="keepitlocal@example.org",
        message_id="<ack.KIL-00042.0.abc@example.org>",
        sender="Keep it Local <keepitlocal@example.org>",
        date=dt.datetime(2018, 7, 27, 21, 31, tzinfo=UTC),
    )
    values.update(changes)
    return AckContent(**values)


def _render(content: AckContent, **kwargs):
    message = render_ack(content, subject_format="Re: {subject} [{reference}]", **kwargs)
    # Round-trip through bytes, as a mail server would see it.
    return message_from_bytes(message.as_bytes(), policy=policy.default)


class TestRender:
    def test_on_time_content_and_headers(self) -> None:
        """Reference, UK time, on time, each file's state and loop-proof headers are all there."""
        message = _render(_content())
        text = message.get_body(("plain",)).get_content()
        assert "KIL-00042" in text
        assert "Fri 27 Jul 2018 22:30:00 BST" in text
        assert "arrived before the deadline (Fri 27 Jul 2018 23:59:59 BST)" in text
        assert "response.pdf: received and read" in text
        assert "annex.pdf: received, but we could not read it: it is password-protected" in text
        assert "before the deadline" in text and "keepitlocal@example.org" in text
        assert message["Subject"] == "Re: Our response [KIL-00042]"
        assert message["To"] == "Jane Smith <jane@anytown.gov.uk>"
        assert message["In-Reply-To"] == "<resp-001@anytown.gov.uk>"
        assert message["References"] == "<resp-001@anytown.gov.uk>"
        assert message["Auto-Submitted"] == "auto-replied"
        assert message["X-Auto-Response-Suppress"] == "All"
        assert message["X-Intake-Ack"] == "KIL-00042"
        assert message["Message-ID"].endswith("@example.org>")
        assert message.get_body(("html",)) is not None

    def test_late(self) -> None:
        """A late response is told so, and what that means."""
        text = _render(_content(on_time=False)).get_body(("plain",)).get_content()
        assert "after the deadline" in text and "team will decide" in text
        assert "before the deadline, replying" not in text

    @pytest.mark.parametrize(
        ("status", "words"),
        [
            ("needs_ocr", "scan or a picture"),
            ("encrypted", "without a password"),
            ("corrupt", "damaged"),
            ("unsupported", "PDF or Word"),
            ("too_large", "too large"),
        ],
    )
    def test_unreadable_advice(self, status: str, words: str) -> None:
        """Each unreadable state tells the respondent what to do."""
        text = (
            _render(_content(attachments=[AckAttachment("x.pdf", status)]))
            .get_body(("plain",))
            .get_content()
        )
        assert words in text

    def test_header_injection_impossible(self) -> None:
        """CR/LF in a name or subject never becomes a header."""
        message = _render(
            _content(
                to_name="Eve\r\nBcc: victim@example.com", subject="Hi\r\nBcc: victim@example.com"
            )
        )
        assert message["Bcc"] is None
        assert "victim@example.com" in message["Subject"]
        head = message.as_bytes().split(b"\n\n")[0]
        assert b"\nBcc:" not in head and b"\r" not in head

    def test_html_escaped(self) -> None:
        """Respondent text is escaped in the HTML part."""
        html = (
            _render(
                _content(
                    to_name="<script>alert(1)</script>",
                    attachments=[AckAttachment("<b>x</b>.pdf", "ok")],
                )
            )
            .get_body(("html",))
            .get_content()
        )
        assert "<script>" not in html and "&lt;script&gt;" in html
        assert "<b>x</b>" not in html

    def test_admin_templates(self, tmp_path: Path) -> None:
        """An admin's templates replace the built-in text and HTML."""
        (tmp_path / "t.txt").write_text("Ref {{ c.reference }} at {{ received_uk }}")
        (tmp_path / "t.html").write_text("<p>{{ c.to_name }}</p>")
        message = _render(
            _content(to_name="A & B"),
            template_text=tmp_path / "t.txt",
            template_html=tmp_path / "t.html",
        )
        assert (
            message.get_body(("plain",)).get_content().strip()
            == "Ref KIL-00042 at Fri 27 Jul 2018 22:30:00 BST"
        )
        assert "<p>A &amp; B</p>" in message.get_body(("html",)).get_content()
