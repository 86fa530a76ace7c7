"""Hostile input end to end: every bad message gets a recorded status and the work goes on.

The tests taking ``app`` run on SQLite and on PostgreSQL (``db_url``). The poison
message in the same fetch batch as good ones is in tests/intake/test_stages.py.
"""

from __future__ import annotations

import io
import json
import logging
import os
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from intake.app import App
from intake.mail.mime import MAX_PARTS, PART_LIMIT_DEFECT, read_message
from intake.staff.daily import build_digest
from intake.staff.digest import render_digest
from intake.worker import import_path
from store.models import Submission
from tests.conftest import DATA, make_settings
from tests.support.corpus import corpus_files

CORPUS_MAIL = list(corpus_files("emails/*.eml").values())
OUR_MAIL = sorted((DATA / "eml").glob("*.eml")) + sorted((DATA / "robots").glob("*.eml"))


@pytest.fixture
def app(db_url: str, request: pytest.FixtureRequest) -> App:
    """An App on SQLite and on PostgreSQL: PostgreSQL refuses NULs and long strings."""
    extra = getattr(request, "param", "")
    application = App(make_settings(db_url, extra=extra))
    request.addfinalizer(application.close)
    return application


def _import(app: App, folder: Path, messages: dict[str, bytes]) -> list[Submission]:
    folder.mkdir(exist_ok=True)
    for name, raw in messages.items():
        (folder / f"{name}.eml").write_bytes(raw)
    with app.pipeline() as pipeline:
        for path in sorted(folder.glob("*.eml")):
            import_path(pipeline, path)
        pipeline.read_pending()
    with app.sessions() as session:
        return list(session.scalars(select(Submission).order_by(Submission.id)))


def _message(subject: str = "hostile", body: str = "body") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "someone@example.net"
    message["Subject"] = subject
    message["Message-ID"] = f"<{abs(hash(subject + body))}@example.net>"
    message.set_content(body)
    return message


def test_every_real_and_own_message_gets_a_status(app: App, tmp_path: Path) -> None:
    """Every third-party corpus message and every fixture is stored and read, never lost."""
    paths = OUR_MAIL + CORPUS_MAIL
    subs = _import(
        app, tmp_path / "in", {f"{n:03d}-{p.stem}": p.read_bytes() for n, p in enumerate(paths)}
    )
    assert len(subs) == len({p.read_bytes() for p in paths})
    for sub in subs:
        assert sub.status in ("parsed", "failed", "too_large"), sub.reference
        assert sub.status != "failed" or sub.error
        for att in sub.attachments:
            assert att.parse_status != "pending"
            assert att.parse_status == "ok" or att.error, (
                sub.reference,
                att.filename,
                att.parse_status,
            )


def test_ten_thousand_parts(app: App, tmp_path: Path) -> None:
    """A message of 10,000 parts is read up to the part limit, and says so."""
    parts = "".join(
        f"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=f{n}.pdf\r\n\r\nx\r\n"
        for n in range(10_000)
    )
    raw = (
        "From: a@example.net\r\nSubject: many parts\r\nMessage-ID: <many@example.net>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        + parts
        + "--b--\r\n"
    ).encode()
    envelope, attachments = read_message(raw)
    assert PART_LIMIT_DEFECT in envelope.defects and len(attachments) < MAX_PARTS
    (sub,) = _import(app, tmp_path / "in", {"many": raw})
    assert sub.status == "parsed" and "Only part of this message was read" in sub.error
    assert len(sub.attachments) == len(attachments)
    beyond = [a for a in sub.attachments if a.position > 100]  # [limits] max_attachments
    assert beyond and all(
        a.parse_status == "too_large" and "more than 100" in a.error for a in beyond
    )


def test_deep_nesting(app: App, tmp_path: Path) -> None:
    """Forwards nested 60 deep are read to the nesting limit and recorded."""
    inner = _message("level 60")
    for level in range(59, 0, -1):
        outer = _message(f"level {level}")
        outer.add_attachment(inner)
        inner = outer
    (sub,) = _import(app, tmp_path / "in", {"deep": inner.as_bytes()})
    assert sub.status == "parsed" and "nests deeper than 10" in sub.error


def test_giant_header(app: App, tmp_path: Path) -> None:
    """A 1 MB subject is kept short, on one line, and the message is stored."""
    raw = (
        b"From: a@example.net\r\nSubject: "
        + b"x" * 1_000_000
        + b"\r\nMessage-ID: <giant@x>\r\n\r\nbody\r\n"
    )
    (sub,) = _import(app, tmp_path / "in", {"giant": raw})
    assert sub.status == "parsed" and len(sub.subject) == 500


def test_fifty_megabyte_attachment(app: App, tmp_path: Path) -> None:
    """A 50 MB attachment makes the message too large: its header is kept and it says why."""
    message = _message("big file")
    message.add_attachment(
        os.urandom(50 * 1024 * 1024), maintype="application", subtype="pdf", filename="big.pdf"
    )
    (sub,) = _import(app, tmp_path / "in", {"big": message.as_bytes()})
    assert sub.status == "too_large" and sub.header_only and "over the 50 MB limit" in sub.error
    assert sub.subject == "big file"


def test_zip_bomb_and_bad_names(app: App, tmp_path: Path) -> None:
    """A decompression bomb is refused by its declared size; hostile names are cleaned."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("evidence.txt", b"\0" * (300 * 1024 * 1024))
    message = _message("bomb")
    message.add_attachment(
        buffer.getvalue(), maintype="application", subtype="zip", filename="PLACEHOLDER.zip"
    )
    # An encoded-word name that decodes to a path with CR/LF in it.
    raw = message.as_bytes().replace(
        b"PLACEHOLDER.zip", b"=?utf-8?q?=2E=2E=2F=2E=2E=2Fevil=0D=0A=2Ezip?="
    )
    (sub,) = _import(app, tmp_path / "in", {"bomb": raw})
    (att,) = sub.attachments
    assert att.filename == "evil .zip"
    assert att.parse_status in ("too_large", "failed") and att.error


def test_html_and_script_are_escaped_in_the_digest(app: App, tmp_path: Path) -> None:
    """Script in a subject, name and body is text in the digest, never markup."""
    message = _message("<script>alert('x')</script>", "<img src=x onerror=alert(1)>")
    message.replace_header("From", '"<b>Bold</b> & Co" <bold@example.net>')
    _import(app, tmp_path / "in", {"script": message.as_bytes()})
    with app.sessions() as session:
        data = build_digest(session, app.settings, app.now(), None)
    rendered = render_digest(
        data, sender="k@example.org", recipients=("t@example.org",), message_id_domain="example.org"
    )
    html = rendered.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>Bold</b>" not in html


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.recursive(
        st.tuples(
            st.sampled_from(
                [
                    "text/plain",
                    "text/html",
                    "application/pdf",
                    "application/octet-stream",
                    "message/rfc822",
                    "image/png",
                    "x-bad/\r\nInjected: yes",
                ]
            ),
            st.sampled_from(["7bit", "base64", "quoted-printable", "x-uuencode", "8bit", "bogus"]),
            st.binary(max_size=300),
            st.text(max_size=40),
        ),
        lambda children: st.lists(children, min_size=0, max_size=4),
        max_leaves=12,
    ),
    st.binary(max_size=200),
)
def test_generated_mime_never_crashes(tree: object, header_junk: bytes) -> None:
    """Arbitrary MIME trees with bad encodings, names and boundaries read without raising."""
    counter = [0]

    def render(node: object) -> bytes:
        counter[0] += 1
        if isinstance(node, list):
            boundary = f"b{counter[0]}"
            body = b"".join(
                b"--" + boundary.encode() + b"\r\n" + render(child) + b"\r\n" for child in node
            )
            closing = (
                b"--" + boundary.encode() + b"--\r\n" if counter[0] % 3 else b""
            )  # sometimes missing
            return (
                f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'.encode()
                + body
                + closing
            )
        ctype, cte, payload, name = node  # type: ignore[misc]
        return (
            f'Content-Type: {ctype}; name="{name}"\r\nContent-Transfer-Encoding: {cte}\r\n'
            f"Content-Disposition: attachment; filename*=utf-8''{name}\r\n\r\n"
        ).encode("utf-8", "surrogateescape") + payload

    raw = (
        b"From: a@example.net\r\nSubject: "
        + header_junk.replace(b"\n", b" ")
        + b"\r\n"
        + render(tree)
    )
    envelope, parts = read_message(raw)
    assert envelope.message_id
    assert all("/" not in p.filename and "\n" not in p.filename for p in parts)


def test_secrets_never_reach_the_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A full run with debug logging never writes the configured passwords."""
    import tomllib

    from intake.config import parse_settings

    secret_imap, secret_smtp = "imap-Pa55word-zz", "smtp-Pa55word-yy"
    document = tomllib.loads(f"""
[consultation]
name = "Keep it Local"
deadline = 2018-07-27T23:59:59
[database]
url = "sqlite:///{tmp_path / "x.db"}"
[imap]
host = "127.0.0.1"
port = 1
security = "none"
username = "u"
[smtp]
host = "127.0.0.1"
port = 1
security = "none"
from = "k@example.org"
username = "u"
""")
    env = {"INTAKE_IMAP_PASSWORD": secret_imap, "INTAKE_SMTP_PASSWORD": secret_smtp}
    loaded = parse_settings(document, env)
    caplog.set_level(logging.DEBUG)
    app = App(loaded)
    import datetime as dt

    from intake.worker import holder_id, run_cycle

    with app.pipeline() as pipeline, pytest.raises(Exception):  # noqa: B017 - the server is absent
        run_cycle(
            pipeline, app.inbox_factory(), holder=holder_id(), lease_ttl=dt.timedelta(minutes=1)
        )
    with app.sessions() as session:
        from store import repo

        run = repo.last_poll_run(session)
    app.close()
    everything = caplog.text + repr(loaded) + json.dumps(str(run.error if run else ""))
    assert secret_imap not in everything and secret_smtp not in everything
    assert run is not None and not run.ok


def test_poison_values_are_cut_and_recorded(app: App, tmp_path: Path) -> None:
    """NULs, a 300-character type, a 2,000-character name and bad UTF-8 headers: stored on
    both databases with the odd values cleaned or cut, and each change recorded."""
    from tests.intake.test_stages import LONG_NAME, LONG_TYPE, poison

    good = _message("good one", "fine")
    subs = _import(app, tmp_path / "in", {"a-poison": poison(), "b-good": good.as_bytes()})
    assert [s.status for s in subs] == ["parsed", "parsed"]
    bad = subs[0]
    assert "\x00" not in (bad.body_text or "") and "\ufffd" in (bad.body_text or "")
    assert "body_text: NUL or undecodable characters replaced" in (bad.defects or "")
    (att,) = bad.attachments
    assert att.content_type == LONG_TYPE[:200]
    # The MIME reader already shortens names (to 200 characters, as in the ack).
    assert 0 < len(att.filename) <= 500 and LONG_NAME.startswith(att.filename)
    assert "content_type: cut from 300 to 200 characters" in (att.error or "")
