"""Reading raw messages: golden .eml cases, and real-world mail that must never crash."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from intake.mail.mime import (
    clean_filename,
    clean_header,
    parse_message,
    read_message,
    sniff_message_id,
)
from tests.conftest import DATA
from tests.support.corpus import corpus_files

CASES = sorted((DATA / "eml").glob("*.eml"))
# Our own fixtures, the third-party mail kept in tests/data/corpus, and the full corpus
# when INTAKE_TEST_CORPUS names it.
NEVER_CRASH = [
    *CASES,
    *sorted((DATA / "robots").glob("*.eml")),
    *corpus_files("emails/*.eml").values(),
]


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_golden_message(path: Path) -> None:
    """Each fixture reads into the values its .expected.json names."""
    expected = json.loads(path.with_suffix(".expected.json").read_text())
    envelope, parts = read_message(path.read_bytes())
    for key in (
        "message_id",
        "sender_email",
        "sender_name",
        "reply_to",
        "subject",
        "message_id_derived",
    ):
        if key in expected:
            assert getattr(envelope, key) == expected[key], key
    for key in ("sent_at", "received_header_at"):
        if key in expected:
            assert _iso(getattr(envelope, key)) == expected[key], key
    for fragment in expected.get("body_contains", []):
        assert fragment in envelope.body_text
    for fragment in expected.get("body_excludes", []):
        assert fragment not in envelope.body_text
    if expected.get("no_control_chars"):
        for value in (envelope.subject, envelope.sender_name, envelope.sender_email):
            assert not any(ord(ch) < 32 for ch in value), value
    if "attachments" in expected:
        assert len(parts) == len(expected["attachments"])
        for part, want in zip(parts, expected["attachments"], strict=True):
            for key in ("filename", "content_type", "nested_in", "inline"):
                if key in want:
                    assert getattr(part, key) == want[key], key
            if "data_contains" in want:
                assert want["data_contains"].encode() in part.data
    if "skipped" in expected:
        got = [
            {key: getattr(part, key) for key in want}
            for part, want in zip(envelope.skipped, expected["skipped"], strict=False)
        ]
        assert len(envelope.skipped) == len(expected["skipped"]), envelope.skipped
        assert got == expected["skipped"]
    if "body_in_order" in expected:
        places = [envelope.body_text.find(fragment) for fragment in expected["body_in_order"]]
        assert -1 not in places and places == sorted(places), (places, envelope.body_text)


def _leaves(raw: bytes) -> int:
    """Leaf parts counted independently of the reader (the stdlib's own walk)."""
    return sum(1 for part in parse_message(raw).walk() if not part.is_multipart())


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_every_leaf_is_accounted_for(path: Path) -> None:
    """Each leaf part is body text, an attachment or a skipped part with a reason."""
    raw = path.read_bytes()
    envelope, parts = read_message(raw)
    assert envelope.leaves == _leaves(raw)
    assert envelope.leaves == envelope.body_parts + len(parts) + len(envelope.skipped)
    assert all(skipped.reason for skipped in envelope.skipped)


def test_golden_cases_exist() -> None:
    """The golden folder is not empty (a broken glob must not pass silently)."""
    assert len(CASES) >= 12


@pytest.mark.parametrize("path", NEVER_CRASH, ids=lambda p: p.name)
def test_real_world_mail_never_crashes(path: Path) -> None:
    """Every message (ours and the shared corpus's) reads without raising, with a usable key."""
    raw = path.read_bytes()
    envelope, parts = read_message(raw)
    assert envelope.message_id
    assert all(part.filename and "/" not in part.filename for part in parts)
    assert "\n" not in envelope.subject and "\r" not in envelope.subject


class TestCleaning:
    def test_filename_drops_folders_and_controls(self) -> None:
        """Path traversal and control characters never survive in a file name."""
        assert clean_filename("..\\..\\win.ini", 1, "text/plain") == "win.ini"
        assert clean_filename("a\r\nb.pdf", 1, "application/pdf") == "a b.pdf"
        assert clean_filename("", 3, "application/pdf") == "attachment-3.pdf"
        assert clean_filename("/", 2, "text/plain") == "attachment-2.txt"

    def test_header_is_one_line(self) -> None:
        """CR, LF and other controls become spaces and runs of space fold."""
        assert clean_header("a\r\nBcc: x\x00y") == "a Bcc: x y"
        assert len(clean_header("x" * 5000)) == 998

    def test_sniff_message_id_folded(self) -> None:
        """A folded Message-ID header is read whole; a body line is never taken."""
        raw = b"Subject: x\r\nMessage-ID:\r\n <abc@host>\r\n\r\nMessage-ID: <body@x>\r\n"
        assert sniff_message_id(raw) == "<abc@host>"
        assert sniff_message_id(b"Subject: x\r\n\r\nMessage-ID: <body@x>\r\n") == ""


class TestLargeMessages:
    """Big base64 bodies are decoded from the original bytes, not through the line parser."""

    def _big(self, payload: bytes, cte: str = "base64", ctype: str = "application/pdf") -> bytes:
        import base64

        body = base64.encodebytes(payload) if cte == "base64" else payload
        return (
            b"From: a@example.org\r\nSubject: big\r\nMessage-ID: <big@x>\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
            b"--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
            b"--b\r\nContent-Type: "
            + ctype.encode()
            + b"\r\nContent-Transfer-Encoding: "
            + cte.encode()
            + b'\r\nContent-Disposition: attachment; filename="big.bin"\r\n\r\n'
            + body
            + b"\r\n--b--\r\n"
        )

    def test_big_base64_attachment_is_exact(self) -> None:
        """A 6 MB attachment comes out byte for byte."""
        import os

        payload = os.urandom(6 * 1024 * 1024)
        envelope, (part,) = read_message(self._big(payload))
        assert part.data == payload and envelope.body_text == "See attached."

    def test_base64_looking_text_is_kept_as_text(self) -> None:
        """Lines that only look like base64 in a 7bit part are left as they were."""
        line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n"
        text = line * 70_000  # 5 MB of base64-looking text, declared 7bit
        _, (part,) = read_message(self._big(text, cte="7bit", ctype="text/csv"))
        assert part.data.replace(b"\r\n", b"\n") == text.replace(b"\r\n", b"\n")
