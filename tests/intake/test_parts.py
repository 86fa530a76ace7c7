"""Every part of a message accounted for, end to end: stored, acknowledged, in the digest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from intake.app import App
from intake.cli import cli
from intake.staff.daily import build_digest
from intake.staff.digest import digest_text
from store.parts import SkippedPartRow
from tests.conftest import DATA, imap_section, make_settings, smtp_section
from tests.intake.test_outbox import poll
from tests.intake.test_poll import AUG, submissions
from tests.support import Dovecot, SmtpServer


def _many_parts(n: int) -> bytes:
    parts = "".join(
        f"--b\r\nContent-Type: text/plain\r\n\r\nParagraph {k} of my answer.\r\n" for k in range(n)
    )
    return (
        "From: Many Parts <many@example.net>\r\nSubject: many parts\r\n"
        "Message-ID: <many-parts@example.net>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + parts + "--b--\r\n"
    ).encode()


@pytest.fixture
def small_limits_app(dovecot: Dovecot, smtp: SmtpServer, db_url: str) -> Iterator[App]:
    """Acknowledging app whose part limit is 5, so a long message is cut short."""
    settings = make_settings(
        db_url,
        inbox=imap_section(dovecot),
        env={"TEST_IMAP_PASSWORD": dovecot.password},
        extra="max_parts = 5\n" + smtp_section(smtp),
    )
    app = App(settings)
    yield app
    app.close()


class TestPartsEndToEnd:
    def test_photo_is_an_attachment_and_named_as_unread(
        self, ack_app: App, dovecot: Dovecot, smtp: SmtpServer
    ) -> None:
        """GIVEN a phone photo inline between two texts THEN both texts and the photo are kept,
        and the acknowledgement and the digest say the photo could not be read."""
        dovecot.append((DATA / "eml" / "phone_photo.eml").read_bytes(), AUG)
        poll(ack_app)
        (sub,) = submissions(ack_app)
        assert "by hand" in sub.body_text and "question 4 on the bus route" in sub.body_text
        (att,) = sub.attachments
        assert (att.filename, att.parse_status) == ("scan.jpg", "needs_ocr")
        body = smtp.messages[0].message.get_body(("plain",)).get_content()
        assert "scan.jpg: received, but we could not read it" in body
        with ack_app.sessions() as session:
            text = digest_text(build_digest(session, ack_app.settings, ack_app.now(), None))
        assert 'attachment "scan.jpg" unreadable (needs_ocr)' in text

    def test_skipped_parts_are_recorded_with_reasons(
        self, ack_app: App, dovecot: Dovecot, smtp: SmtpServer
    ) -> None:
        """A logo and the HTML copy are recorded as skipped, shown in the digest, not in the ack."""
        dovecot.append((DATA / "eml" / "outlook_logo.eml").read_bytes(), AUG)
        poll(ack_app)
        (sub,) = submissions(ack_app)
        with ack_app.sessions() as session:
            rows = session.scalars(select(SkippedPartRow).order_by(SkippedPartRow.position))
            found = [(r.position, r.content_type, r.filename, r.reason) for r in rows]
        assert found == [
            (2, "text/html", None, "another version of the body text"),
            (3, "image/png", "image001.png", "signature image"),
        ]
        assert sub.attachments == []
        body = smtp.messages[0].message.get_body(("plain",)).get_content()
        assert "could not read" not in body and "image001" not in body
        with ack_app.sessions() as session:
            text = digest_text(build_digest(session, ack_app.settings, ack_app.now(), None))
        assert "image001.png (skipped: signature image)" in text
        assert "Nothing needs attention." in text

    def test_parts_over_the_limit_are_listed_as_unread(
        self, small_limits_app: App, dovecot: Dovecot, smtp: SmtpServer
    ) -> None:
        """Parts past [limits] max_parts are named as not read in the ack and the digest."""
        dovecot.append(_many_parts(12), AUG)
        poll(small_limits_app)
        (sub,) = submissions(small_limits_app)
        assert "Paragraph 0 of my answer" in sub.body_text
        assert "Paragraph 11" not in sub.body_text
        body = smtp.messages[0].message.get_body(("plain",)).get_content()
        assert "Parts of your email we could not read:" in body
        assert "(not read: over the part or nesting limit)" in body
        with small_limits_app.sessions() as session:
            app = small_limits_app
            text = digest_text(build_digest(session, app.settings, app.now(), None))
        assert "not read: over the part or nesting limit" in text
        assert "Nothing needs attention." not in text

    def test_reread_replaces_skipped_parts(
        self, ack_app: App, dovecot: Dovecot, smtp: SmtpServer
    ) -> None:
        """Reading a submission again records its skipped parts once, not twice."""
        dovecot.append((DATA / "eml" / "calendar_invite.eml").read_bytes(), AUG)
        poll(ack_app)
        (sub,) = submissions(ack_app)
        with ack_app.pipeline() as pipeline:
            pipeline.read([sub.id])
        with ack_app.sessions() as session:
            reasons = list(session.scalars(select(SkippedPartRow.reason)))
        assert sorted(reasons) == ["another version of the body text", "calendar invitation"]


def test_show_lists_skipped_parts(tmp_path: Path) -> None:
    """`intake show` names each skipped part with its reason (and --json carries them)."""
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[consultation]
name = "Keep it Local"
deadline = 2018-07-27T23:59:59
reference_prefix = "KIL"

[database]
url = "sqlite:///{tmp_path / "intake.db"}"

[maildir]
path = "inbox"
"""
    )
    runner = CliRunner()
    args = ["--config", str(config)]
    imported = runner.invoke(cli, [*args, "import", str(DATA / "eml" / "outlook_logo.eml")])
    assert imported.exit_code == 0, imported.output
    shown = runner.invoke(cli, [*args, "show", "KIL-00001"])
    assert "--- image001.png [image/png, 68 bytes]: signature image" in shown.output
    assert "--- text/html [text/html," in shown.output
    record = json.loads(runner.invoke(cli, [*args, "show", "KIL-00001", "--json"]).output)
    assert [p["reason"] for p in record["skipped_parts"]] == [
        "another version of the body text",
        "signature image",
    ]
