"""The MIME reader's shortcuts give exactly what the stdlib's modern parser gives.

:func:`intake.mail.mime.parse_message` reads a single-part message without the
stdlib's line parser, hands long base64 runs past it, and decodes the headers we
store without the header registry where that is safe. Each case here is one those
shortcuts could get wrong; every message is checked against a plain
``email.message_from_bytes(raw, policy=policy.default)`` parse, and the values
read from it are pinned.
"""

from __future__ import annotations

import base64
import datetime as dt
import email
import os
import quopri
from email import policy
from email.message import Message

import pytest

from intake.mail.mime import decoded_leaves, parse_message, read_message

UTC = dt.UTC


def _shape(message: Message) -> list[tuple[object, ...]]:
    """Everything a parse decides: headers, types, payloads, defects, per part."""
    shape: list[tuple[object, ...]] = []
    for part in message.walk():
        payload = part._payload  # type: ignore[attr-defined]  # noqa: SLF001 - as stored
        try:
            decoded = None if part.is_multipart() else part.get_payload(decode=True)
        except Exception as error:  # noqa: BLE001
            decoded = repr(error)
        shape.append(
            (
                list(part.raw_items()),
                [str(value) for value in part.values()],
                part.get_content_type(),
                part.get_filename(),
                part.get_content_charset(),
                payload if isinstance(payload, str) else len(payload),
                decoded,
                [type(defect).__name__ for defect in part.defects],
                part.preamble,
                part.epilogue,
            )
        )
    return shape


def _same_as_stdlib(raw: bytes) -> None:
    reference = email.message_from_bytes(raw, policy=policy.default)
    assert _shape(parse_message(raw)) == _shape(reference)
    leaves = [part.get_payload(decode=True) for part in reference.walk() if not part.is_multipart()]
    assert decoded_leaves(raw) == leaves


def _message(head: bytes, body: bytes = b"Hello.\n", eol: bytes = b"\n") -> bytes:
    lines = head.strip(b"\n").split(b"\n")
    return eol.join(lines) + eol + eol + body.replace(b"\n", eol)


HEAD = b"From: Ann Smith <ann@example.org>\nTo: consult@example.org\nMessage-ID: <m1@example.org>\n"

SINGLE_PART = {
    "plain": _message(HEAD + b"Subject: Plain\n"),
    "encoded words": _message(
        HEAD.replace(b"Ann Smith", b"=?utf-8?q?Ren=C3=A9e_M=C3=BCller?=")
        + b"Subject: =?utf-8?q?caf=C3=A9?= and =?iso-8859-1?b?Zm/2?=\n"
    ),
    "8-bit latin-1 header": _message(HEAD + b"Subject: Forma\xe7\xe3o\n"),
    "8-bit utf-8 header": _message(HEAD + b"Subject: Forma\xc3\xa7\xc3\xa3o\n"),
    "8-bit sender name": _message(
        b"From: Jos\xe9 <jose@example.org>\nSubject: x\nMessage-ID: <m2@example.org>\n"
    ),
    "folded": _message(
        b'From: "Smith, Ann"\n <ann@example.org>\nSubject: a long\n subject\n\tfolded\n'
        b"Date: Sun, 01 Jul 2018\n 09:00:37 +0100\n"
    ),
    "odd addresses": _message(
        b'From: "O\'Brien (Cllr)" <ob@example.ie>\nReply-To: <r@example.org>\n'
        b"To: T <t@example.org>, u@example.org\nSubject: x\n"
    ),
    "qp koi8-r": _message(
        HEAD + b"Subject: qp\nContent-Type: text/plain; charset=koi8-r\n"
        b"Content-Transfer-Encoding: quoted-printable\n",
        quopri.encodestring("Привет, мир\n".encode("koi8-r")),
    ),
    "base64 windows-1252 html": _message(
        HEAD + b'Subject: b64\nContent-Type: text/html; charset="windows-1252"\n'
        b"Content-Transfer-Encoding: base64\n",
        base64.encodebytes("<p>\u201cquoted\u201d caf\xe9</p>".encode("cp1252")),
    ),
    "base64 shift_jis": _message(
        HEAD + b"Subject: sjis\nContent-Type: text/plain; charset=shift_jis\n"
        b"Content-Transfer-Encoding: base64\n",
        base64.encodebytes("こんにちは".encode("shift_jis")),
    ),
    "bad base64": _message(
        HEAD + b"Subject: bad\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n",
        b"SGVsbG8gd29ybGQ*\n",
    ),
    "8bit body": _message(
        HEAD + b"Subject: 8bit\nContent-Type: text/plain; charset=utf-8\n"
        b"Content-Transfer-Encoding: 8bit\n",
        "Grüße aus Köln\n".encode(),
    ),
    "bogus charset": _message(
        HEAD + b"Subject: x\nContent-Type: text/plain; charset=x-no-such\n", b"caf\xe9\n"
    ),
    "crlf": _message(HEAD + b"Subject: CRLF\n", b"one\ntwo\n", eol=b"\r\n"),
    "missing blank line": HEAD + b"Subject: no gap\nThe body starts here.\n",
    "header block only": HEAD + b"Subject: no body\n",
    "header block without final newline": HEAD + b"Subject: cut",
    "lone carriage return": HEAD + b"Subject: a\rb\n\nbody\n",
    "continuation first": b" folded first\n" + HEAD + b"\nbody\n",
    "no headers": b"\njust a body\n",
    "empty": b"",
    "unix from line": b"From someone Mon Jul  2 09:00:00 2018\n" + HEAD + b"\nbody\n",
    "empty header name": HEAD + b": nameless\n\nbody\n",
    "control characters": _message(HEAD + b"Subject: a\x00b\x0bc\x0cd\x1ce\n"),
    "dates": _message(HEAD + b"Date: 1 Jul 2018 09:00 GMT\nReceived: from a by b; garbage\n"),
}


@pytest.mark.parametrize("raw", SINGLE_PART.values(), ids=SINGLE_PART.keys())
def test_single_part_parse_is_the_stdlib_parse(raw: bytes) -> None:
    """Headers, payload, defects and decoded body match the stdlib parse."""
    _same_as_stdlib(raw)


def _pdf_message(payload: bytes, encoded: bytes | None = None, eol: bytes = b"\n") -> bytes:
    body = base64.encodebytes(payload) if encoded is None else encoded
    raw = (
        HEAD + b"Subject: attached\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="b"\n\n'
        b"--b\nContent-Type: text/plain\n\nSee attached.\n"
        b"--b\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n"
        b'Content-Disposition: attachment; filename="r.pdf"\n\n' + body + b"\n--b--\n"
    )
    return raw.replace(b"\n", eol)


PAYLOAD = os.urandom(20_000) + b"end"  # 20,003 bytes: the last base64 line is short
ENCODED = base64.encodebytes(PAYLOAD)
MULTIPART = {
    "lf": _pdf_message(PAYLOAD),
    "crlf": _pdf_message(PAYLOAD, eol=b"\r\n"),
    "no padding": _pdf_message(PAYLOAD, ENCODED.rstrip(b"=\n")),
    "padding inside": _pdf_message(PAYLOAD, ENCODED[:800] + b"=" + ENCODED[800:]),
    "padding ending a line": _pdf_message(PAYLOAD, ENCODED[:76] + b"=" + ENCODED[76:]),
    "short line inside": _pdf_message(PAYLOAD, ENCODED[:75] + ENCODED[76:]),
    "padding ending lines, html": _pdf_message(
        PAYLOAD, ENCODED[:76] + b"==" + ENCODED[76:153] + b"==" + ENCODED[153:]
    ).replace(b"application/pdf", b"text/html"),
    "junk character": _pdf_message(PAYLOAD, ENCODED[:800] + b"*" + ENCODED[800:]),
    "blank line inside": _pdf_message(PAYLOAD, ENCODED[:770] + b"\n" + ENCODED[770:]),
    "base64 html": _pdf_message(PAYLOAD).replace(b"application/pdf", b"text/html"),
    "base64 declared 7bit": _pdf_message(PAYLOAD).replace(b": base64", b": 7bit"),
    "base64 multipart leaf": _pdf_message(PAYLOAD).replace(
        b"application/pdf", b"multipart/mixed; boundary=zz"
    ),
    "marker text in the message": _pdf_message(PAYLOAD).replace(b"See attached.", b"INTAKELIFT0X"),
}


@pytest.mark.parametrize("raw", MULTIPART.values(), ids=MULTIPART.keys())
def test_base64_runs_parse_as_the_stdlib_parse(raw: bytes) -> None:
    """Long base64 bodies handed past the line parser come back exactly, bad ones too."""
    _same_as_stdlib(raw)
    # The marker text anywhere in a message turns the shortcut off: the same read.
    plain = raw.replace(b"Subject:", b"X-Note: INTAKELIFT\nSubject:", 1)
    assert read_message(raw) == read_message(plain)


def test_base64_attachment_is_exact() -> None:
    """The attachment's bytes are the payload, whatever the line endings."""
    for eol in (b"\n", b"\r\n"):
        envelope, (part,) = read_message(_pdf_message(PAYLOAD, eol=eol))
        assert part.data == PAYLOAD and part.filename == "r.pdf"
        assert envelope.body_text == "See attached." and envelope.defects == ()


def test_header_values_are_pinned() -> None:
    """The values read from headers, through the shortcuts and through the registry."""
    envelope, _ = read_message(SINGLE_PART["encoded words"])
    assert envelope.subject == "café and foö"
    assert (envelope.sender_name, envelope.sender_email) == ("Renée Müller", "ann@example.org")
    assert read_message(SINGLE_PART["8-bit latin-1 header"])[0].subject == "Formação"
    assert read_message(SINGLE_PART["8-bit utf-8 header"])[0].subject == "Formação"
    assert read_message(SINGLE_PART["8-bit sender name"])[0].sender_name == "José"
    folded = read_message(SINGLE_PART["folded"])[0]
    assert folded.subject == "a long subject folded"
    assert (folded.sender_name, folded.sender_email) == ("Smith, Ann", "ann@example.org")
    assert folded.sent_at == dt.datetime(2018, 7, 1, 8, 0, 37, tzinfo=UTC)
    odd = read_message(SINGLE_PART["odd addresses"])[0]
    assert (odd.sender_name, odd.sender_email, odd.reply_to) == (
        "O'Brien (Cllr)",
        "ob@example.ie",
        "r@example.org",
    )
    assert odd.headers["To"] == "T <t@example.org>, u@example.org"
    plain = read_message(SINGLE_PART["plain"])[0]
    assert plain.headers["To"] == "consult@example.org"
    assert (plain.sender_name, plain.sender_email) == ("Ann Smith", "ann@example.org")
    dates = read_message(SINGLE_PART["dates"])[0]
    assert dates.sent_at == dt.datetime(2018, 7, 1, 9, 0, tzinfo=UTC)
    assert dates.received_header_at is None
    assert read_message(SINGLE_PART["control characters"])[0].subject == "a b c d e"


def test_bodies_are_pinned() -> None:
    """Body text of the odd encodings and layouts."""
    assert read_message(SINGLE_PART["qp koi8-r"])[0].body_text == "Привет, мир"
    html = read_message(SINGLE_PART["base64 windows-1252 html"])[0].body_text
    assert html == "\u201cquoted\u201d caf\xe9"
    assert read_message(SINGLE_PART["base64 shift_jis"])[0].body_text == "こんにちは"
    assert read_message(SINGLE_PART["8bit body"])[0].body_text == "Grüße aus Köln"
    crlf = read_message(SINGLE_PART["crlf"])[0]
    assert crlf.body_text == "one\ntwo" and crlf.subject == "CRLF"
    gap = read_message(SINGLE_PART["missing blank line"])[0]
    assert gap.body_text == "The body starts here."
    assert gap.defects == ("MissingHeaderBodySeparatorDefect",)
    for name in ("header block only", "header block without final newline"):
        envelope, parts = read_message(SINGLE_PART[name])
        assert (
            envelope.body_text == "" and parts == [] and envelope.message_id == "<m1@example.org>"
        )
    assert read_message(SINGLE_PART["header block without final newline"])[0].subject == "cut"
    bad = read_message(SINGLE_PART["bad base64"])[0]
    assert bad.body_text == "Hello world"
