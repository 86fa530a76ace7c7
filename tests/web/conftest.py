"""Fixtures for the web view: a database of real messages read by the real pipeline,
two accounts (an admin and a member of staff), and a signed-in HTTP client for each."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from intake.app import App
from intake.web import create_app
from intake.web.auth import hash_password
from intake.worker import import_path
from store import users as user_store
from tests.conftest import DATA, make_settings
from tests.intake.test_cli_tags import COUNCIL

PASSWORD = "correct horse battery staple"
ADMIN = "admin@example.org"
STAFF = "staff@example.org"
SCRIPT_SUBJECT = '<script>alert("x")</script><b>Bold</b> & "quotes"'
DOCX = DATA / "docs" / "features.docx"
COUNCIL_REF = "KIL-00006"
NOW = dt.datetime(2018, 7, 30, 9, 0, tzinfo=dt.UTC)


def _message(
    sender: str,
    subject: str,
    body: str,
    date: str,
    received: str | None = None,
    files: tuple[tuple[str, str, bytes], ...] = (),
) -> bytes:
    message = EmailMessage()
    if received:
        message["Received"] = f"from mx.example.net by mail.example.org; {received}"
    message["From"] = sender
    message["To"] = "keepitlocal@example.org"
    message["Subject"] = subject
    message["Date"] = date
    message["Message-ID"] = f"<{abs(hash((sender, subject)))}@example.net>"
    message.set_content(body)
    for name, ctype, data in files:
        maintype, subtype = ctype.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return bytes(message)


def write_messages(folder: Path) -> None:
    """Five responses: on time with files, late, late but sent in time, a hostile subject,
    and one whose PDF cannot be read."""
    folder.mkdir(parents=True, exist_ok=True)
    messages = [
        _message(
            "Ann Example <ann@example.net>",
            "Evidence from the Northtown residents",
            "Please find our evidence attached.",
            "Fri, 20 Jul 2018 10:00:00 +0100",
            files=(
                (
                    "evidence.docx",
                    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                    DOCX.read_bytes(),
                ),
                ("notes.txt", "text/plain", b"Question 1: more buses.\nQuestion 2: libraries.\n"),
            ),
        ),
        _message(
            "Bob Late <bob@example.net>",
            "Late thoughts on local services",
            "Sorry this is late.",
            "Sat, 28 Jul 2018 08:05:00 +0100",
            received="Sat, 28 Jul 2018 08:05:02 +0100",
        ),
        _message(
            "Cara Edge <cara@example.net>",
            "Sent just before midnight",
            "Sent on Friday night.",
            "Fri, 27 Jul 2018 23:58:00 +0100",
            received="Sat, 28 Jul 2018 00:20:00 +0100",
        ),
        _message(
            "Mallory <mallory@example.net>",
            SCRIPT_SUBJECT,
            "<img src=x onerror=alert(1)> body text",
            "Thu, 26 Jul 2018 12:00:00 +0100",
        ),
        _message(
            "Dan Broken <dan@example.net>",
            "Our survey results",
            "The PDF has our results.",
            "Wed, 25 Jul 2018 12:00:00 +0100",
            files=(("results.pdf", "application/pdf", b"%PDF-1.4\nthis is not really a pdf\n"),),
        ),
    ]
    for n, raw in enumerate(messages, start=1):
        (folder / f"{n}.eml").write_bytes(raw)


def seeded_app(db_url: str, folder: Path, *, questions: bool = False) -> App:
    """An App whose database holds the five responses, read, and the two accounts (with
    ``questions``, the call's four questions too and a council's answer to them,
    KIL-00006, so that passages are tagged)."""
    settings = make_settings(db_url, extra="workers = 1", questions=questions)
    app = App(settings, now=lambda: NOW)
    write_messages(folder)
    if questions:
        (folder / "6.eml").write_bytes(
            _message(
                "Policy <policy@northmoor.gov.uk>",
                "Our response",
                "Please find our response attached.",
                "Thu, 26 Jul 2018 10:00:00 +0100",
                files=(("response.txt", "text/plain", COUNCIL.encode()),),
            )
        )
    with app.pipeline(acks=False) as pipeline:
        for path in sorted(folder.glob("*.eml")):
            import_path(pipeline, path)
        pipeline.read_pending()
    hashed = hash_password(PASSWORD)
    with app.sessions() as session:
        user_store.add_user(session, ADMIN, "admin", hashed, NOW)
        user_store.add_user(session, STAFF, "staff", hashed, NOW)
        session.commit()
    return app


@pytest.fixture
def web_app(db_url: str, tmp_path: Path) -> Iterator[App]:
    app = seeded_app(db_url, tmp_path / "mail")
    yield app
    app.close()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> TestClient:
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client


@pytest.fixture
def anonymous(web_app: App) -> Iterator[TestClient]:
    with TestClient(create_app(web_app)) as client:
        yield client


@pytest.fixture
def admin(web_app: App) -> Iterator[TestClient]:
    with TestClient(create_app(web_app)) as client:
        yield sign_in(client, ADMIN)


@pytest.fixture
def staff(web_app: App) -> Iterator[TestClient]:
    with TestClient(create_app(web_app)) as client:
        yield sign_in(client, STAFF)
