"""Mail that used to be shown wrongly: 8-bit subjects, Outlook's own parts, sound, auto-replies.

Each message is real bytes imported with ``intake import`` into SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from intake.cli import cli
from intake.stages.classify import auto_reply_reason
from store.repo import is_decoration

HEAD = (
    "From: {sender}\nTo: evidence@example.org\nDate: Tue, 24 Jul 2018 10:00:00 +0100\n"
    "Message-ID: <{mid}@example.org>\n"
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8


def _mail(mid: str, subject: bytes, rest: bytes, sender: str = "ann@example.org") -> bytes:
    return HEAD.format(sender=sender, mid=mid).encode() + b"Subject: " + subject + b"\n" + rest


def _b64(data: bytes) -> bytes:
    import base64

    return base64.encodebytes(data)


LATIN1 = _mail("latin1", b"Forma\xe7\xe3o profissional", b"\nOld mail program.\n")
# As Outlook sends it from a plain-text or RTF message: the signature logo attached
# to the mixed message (not inline in multipart/related), then the empty ATT00001.htm.
OUTLOOK = _mail(
    "outlook",
    b"Our response",
    b"MIME-Version: 1.0\n"
    b'Content-Type: multipart/mixed; boundary="m"\n\n'
    b'--m\nContent-Type: text/plain; charset="utf-8"\n\nWe support more buses.\n'
    b'--m\nContent-Type: image/jpeg; name="image001.jpg"\n'
    b'Content-ID: <image001.jpg@01D42>\nContent-Disposition: attachment; filename="image001.jpg"\n'
    b"Content-Transfer-Encoding: base64\n\n" + _b64(JPEG) + b""
    b'--m\nContent-Type: text/html; charset="utf-8"; name="ATT00001.htm"\n'
    b'Content-Disposition: attachment; filename="ATT00001.htm"\n\n\n'
    b"--m--\n",
)
AUDIO = _mail(
    "audio",
    b"Voice message",
    b"MIME-Version: 1.0\n"
    b'Content-Type: multipart/mixed; boundary="m"\n\n'
    b"--m\nContent-Type: text/plain\n\nPlease listen.\n"
    b'--m\nContent-Type: audio/basic; name="voice.au"\n'
    b'Content-Disposition: attachment; filename="voice.au"\n'
    b"Content-Transfer-Encoding: base64\n\n" + _b64(bytes(range(128, 256)) * 16) + b"--m--\n",
)
OUT_OF_OFFICE = _mail(
    "ooo",
    b"Automatic reply: Keep it Local",
    b"Auto-Submitted: auto-replied\n\nI am away until Monday.\n",
    sender="bob@example.org",
)
OUT_OF_OFFICE_SUBJECT_ONLY = _mail(
    "ooo2", b"Out of Office: Keep it Local", b"\nBack on the 30th.\n", sender="cy@example.org"
)


@pytest.fixture
def stored(tmp_path: Path, db_url: str) -> Path:
    """The five messages imported into a fresh database."""
    folder = tmp_path / "mail"
    folder.mkdir()
    for name, raw in {
        "1-latin1.eml": LATIN1,
        "2-outlook.eml": OUTLOOK,
        "3-audio.eml": AUDIO,
        "4-ooo.eml": OUT_OF_OFFICE,
        "5-ooo.eml": OUT_OF_OFFICE_SUBJECT_ONLY,
    }.items():
        (folder / name).write_bytes(raw)
    config = tmp_path / "config.toml"
    config.write_text(
        '[consultation]\nname = "Keep it Local"\ndeadline = 2018-07-27T23:59:59\n'
        f'reference_prefix = "KIL"\n[database]\nurl = "{db_url}"\n'
    )
    result = _run(config, "import", str(folder))
    assert result.exit_code == 0, result.output
    return config


def _run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def _records(config: Path) -> dict[str, dict]:
    lines = _run(config, "export").output.splitlines()
    return {json.loads(line)["message_id"]: json.loads(line) for line in lines}


class TestStoredMail:
    def test_latin1_subject_is_decoded(self, stored: Path) -> None:
        """A subject sent as raw Latin-1 bytes reads 'Formação', not replacement marks."""
        assert _records(stored)["<latin1@example.org>"]["subject"] == "Formação profissional"
        assert "Formação profissional" in _run(stored, "list").output

    def test_outlook_parts_are_not_unread(self, stored: Path) -> None:
        """image001.jpg and ATT00001.htm are kept but not counted as unread files."""
        listing = [
            line for line in _run(stored, "list").output.splitlines() if "Our response" in line
        ]
        assert len(listing) == 1 and "2 file(s)" in listing[0] and "unread" not in listing[0]
        failed = _run(stored, "list", "--failed").output
        assert "Our response" not in failed

    def test_sound_is_not_read_as_text(self, stored: Path) -> None:
        """An audio/basic attachment is recorded as sound, with no text made from its bytes."""
        (att,) = _records(stored)["<audio@example.org>"]["attachments"]
        assert att["detected_type"] == "audio/basic"
        assert att["parse_status"] != "ok" and not att["text"]

    def test_out_of_office_is_not_a_response(self, stored: Path) -> None:
        """Automatic replies are kept but left out of the list, the export and the totals."""
        records = _records(stored)
        assert "<ooo@example.org>" not in records and "<ooo2@example.org>" not in records
        assert len(records) == 3
        assert "Submissions: 3 (" in _run(stored, "status").output

    def test_classify_command_is_idempotent(self, stored: Path) -> None:
        """Re-running the classification over stored mail changes nothing the second time."""
        first = _run(stored, "classify")
        assert first.exit_code == 0 and "5 submission(s) looked at; no changes" in first.output


@pytest.mark.parametrize(
    ("headers", "subject", "attachments", "expected"),
    [
        ({"Auto-Submitted": "auto-replied"}, "Re: x", 0, "Auto-Submitted: auto-replied"),
        ({"Auto-Submitted": "no"}, "Our response", 0, None),
        ({"X-Autoreply": "yes"}, "x", 0, "x-autoreply header"),
        ({}, "Automatic reply: Keep it Local", 0, "subject"),
        ({}, "Ateb awtomatig: Cadw'n Lleol", 0, "subject"),
        ({}, "Out of office response from our trust", 1, None),
        ({}, "Our response", 0, None),
    ],
)
def test_auto_reply_reason(
    headers: dict[str, str], subject: str, attachments: int, expected: str | None
) -> None:
    """Headers decide; a subject alone only for a message without attachments."""
    reason = auto_reply_reason(headers, subject, attachments)
    assert (reason is None) if expected is None else (reason is not None and expected in reason)


@pytest.mark.parametrize(
    ("name", "ctype", "size", "expected"),
    [
        ("image001.jpg", "image/jpeg", 4000, True),
        ("image002.png", "image/png", 4000, True),
        ("image001.jpg", "image/jpeg", 2_000_000, False),
        ("ATT00001.htm", "text/html", 10, True),
        ("ATT00002.txt", "text/plain", 10, True),
        ("scan001.jpg", "image/jpeg", 4000, False),
        ("response.pdf", "application/pdf", 4000, False),
    ],
)
def test_is_decoration(name: str, ctype: str, size: int, expected: bool) -> None:
    """Outlook's logos and trailers are decoration; a big image or another name is not."""
    assert is_decoration(name, ctype, size) is expected


def test_subject_only_auto_reply_gets_no_acknowledgement(ack_app, dovecot, smtp) -> None:
    """An out-of-office known only by its subject is filed apart and not acknowledged."""
    import datetime as dt

    from tests.intake.test_outbox import acks, poll

    dovecot.append(OUT_OF_OFFICE_SUBJECT_ONLY, dt.datetime(2018, 7, 24, 10, tzinfo=dt.UTC))
    dovecot.append(LATIN1, dt.datetime(2018, 7, 24, 11, tzinfo=dt.UTC))
    poll(ack_app)
    found = {ack.to_addr: ack for ack in acks(ack_app)}
    assert found["cy@example.org"].status == "suppressed"
    assert "an automatic reply (subject" in found["cy@example.org"].reason
    assert found["ann@example.org"].status == "sent"
    assert [m.rcpt_tos for m in smtp.messages] == [("ann@example.org",)]
