"""The web view in a real browser: Debian's Chromium driven by Playwright.

A real uvicorn server runs in a thread on a free port, over a SQLite database the
real pipeline has read six messages into (one tagged against the call's questions). The tests also save the screenshots the
README shows (docs/screenshots/).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from intake.app import App
from intake.web import create_app
from tests.conftest import ROOT
from tests.web.conftest import (
    ADMIN,
    COUNCIL_REF,
    DOCX,
    PASSWORD,
    SCRIPT_SUBJECT,
    STAFF,
    seeded_app,
)

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "docs" / "screenshots"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, App]]:
    folder = tmp_path_factory.mktemp("web")
    app = seeded_app(f"sqlite:///{folder / 'intake.db'}", folder / "mail", questions=True)
    port = _free_port()
    config = uvicorn.Config(create_app(app), host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not running.started:
        assert time.monotonic() < deadline, "the web server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app
    running.should_exit = True
    thread.join(10)
    app.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), (
        "Chromium is needed: apt-get install chromium (scripts/system-deps.sh)"
    )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, server: tuple[str, App]) -> Iterator[Page]:
    context = browser.new_context(base_url=server[0], accept_downloads=True)
    opened = context.new_page()
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield opened
    context.close()
    assert dialogs == [], f"a script ran: {dialogs}"


def log_in(page: Page, email: str, target: str = "/") -> None:
    page.goto(target)
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/submissions",
        "/submissions/KIL-00001",
        "/search?q=a",
        "/attention",
        "/questions",
        "/logout",
    ],
)
def test_every_page_needs_a_session(page: Page, path: str) -> None:
    """Without a session every page lands on the sign-in form."""
    page.goto(path)
    assert page.url.split("?")[0].endswith("/login")
    assert page.get_by_role("heading", name="Sign in").is_visible()


def test_log_in_filter_search_open_and_download(page: Page) -> None:
    """A member of staff signs in, filters, searches, opens a response, downloads a file."""
    log_in(page, STAFF, "/submissions")
    assert page.url.endswith("/submissions")
    assert page.locator("#count").inner_text().startswith("6 response(s)")
    page.set_viewport_size({"width": 1400, "height": 900})
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "list.png"), full_page=True)

    page.get_by_label("On time or late").select_option("late")
    page.get_by_role("button", name="Filter").click()
    assert "timeliness=late" in page.url
    assert page.locator("#count").inner_text().startswith("2 response(s)")
    assert page.get_by_role("link", name="KIL-00002").is_visible()

    page.get_by_role("link", name="Search").click()
    page.get_by_label("Search the responses").fill("northtown")
    page.get_by_role("button", name="Search").click()
    assert page.locator("#count").inner_text().startswith("1 result(s)")

    page.get_by_role("link", name="KIL-00001").click()
    assert page.get_by_role("heading", level=1).inner_text().startswith("KIL-00001")
    assert page.locator("pre.text").get_by_text("Question 1: more buses.").is_visible()
    page.screenshot(path=str(SHOTS / "response.png"), full_page=True)

    with page.expect_download() as info:
        page.get_by_role("link", name="Download the original").first.click()
    download = info.value
    assert download.suggested_filename == "evidence.docx"
    assert Path(download.path()).read_bytes() == DOCX.read_bytes()


def test_review_a_tag_from_the_questions_page(page: Page) -> None:
    """Staff go from a question to a tagged passage, reject the tag and set the
    respondent; the passage leaves the question's page and the decisions are audited."""
    log_in(page, STAFF, "/questions")
    page.get_by_role("link", name=re.compile(r"^c: ")).click()
    assert page.get_by_role("heading", level=1).inner_text().startswith("c: ")
    page.get_by_role("link", name=COUNCIL_REF).first.click()
    assert page.url.endswith("#passage-3")
    page.set_viewport_size({"width": 1400, "height": 900})
    page.locator("#passage-3").screenshot(path=str(SHOTS / "questions.png"))
    page.locator("#passage-3").get_by_role("button", name="Reject c").click()
    page.wait_for_load_state()
    assert page.get_by_role("status").inner_text().startswith("Your decision on the passage")
    assert page.locator("#passage-3").get_by_text("rejected").is_visible()
    page.get_by_label("Respondent type").select_option("charity")
    page.get_by_label("organisation").fill("Northmoor Community Action")
    page.get_by_role("button", name="Set the respondent").click()
    page.wait_for_load_state()
    assert page.get_by_text(f"tag_rejected: 3:c by {STAFF}").is_visible()
    page.goto("/questions/c")
    assert page.get_by_role("link", name=COUNCIL_REF).count() == 0


def test_script_subject_shown_as_text(page: Page) -> None:
    """A subject full of HTML and script is shown as the characters it is; nothing runs."""
    log_in(page, STAFF, "/submissions/KIL-00004")
    heading = page.get_by_role("heading", level=1).inner_text()
    assert heading == f"KIL-00004: {SCRIPT_SUBJECT}"
    assert page.locator("main b").count() == 0 and page.locator("main img").count() == 0
    page.goto("/submissions")
    assert page.get_by_text(SCRIPT_SUBJECT).is_visible()


def test_admin_reparse(page: Page, server: tuple[str, App]) -> None:
    """An admin reads a response again from the browser; it is audited with their name."""
    log_in(page, ADMIN, "/attention")
    page.get_by_role("button", name="Read KIL-00005 again").first.click()
    page.wait_for_load_state()
    assert page.url.endswith("/submissions/KIL-00005?done=reparsed")
    assert page.get_by_role("status").inner_text() == "Read again from the stored message."
    assert page.get_by_text(f"reparse: by {ADMIN}: 1 submission(s)").is_visible()


def test_staff_refused_admin_action(page: Page) -> None:
    """Staff see no admin forms, and a forged admin POST (with a valid token) is refused."""
    log_in(page, STAFF, "/submissions/KIL-00003")
    assert page.get_by_role("heading", name="Admin actions").count() == 0
    token = page.locator('input[name="csrf"]').first.get_attribute("value")
    response = page.request.post(
        "/submissions/KIL-00003/timeliness",
        form={"csrf": token or "", "timeliness": "on_time", "reason": "sneaky"},
    )
    assert response.status == 403 and "Only an admin" in response.text()
    page.reload()
    assert page.get_by_text("Set by staff").count() == 0


def test_post_without_csrf_refused(page: Page) -> None:
    """An admin's POST without the form's token is refused (as from another site)."""
    log_in(page, ADMIN, "/submissions/KIL-00002")
    response = page.request.post("/submissions/KIL-00002/not-response", form={"reason": "no token"})
    assert response.status == 403
    page.goto("/submissions")
    assert page.get_by_role("link", name="KIL-00002").is_visible()


def test_logout(page: Page) -> None:
    """Signing out returns to the sign-in form; the pages need a session again."""
    log_in(page, STAFF)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()
    assert page.url.endswith("/login")
    page.goto("/attention")
    assert page.url.split("?")[0].endswith("/login")
