"""Every route of the web view over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import re

import pytest
from starlette.testclient import TestClient

from intake.app import App
from intake.mail.mime import read_message
from intake.web import create_app
from store import repo
from store import users as user_store
from tests.web.conftest import ADMIN, DOCX, PASSWORD, STAFF, csrf_of, sign_in

PAGES = [
    "/",
    "/submissions",
    "/submissions?timeliness=late",
    "/submissions/KIL-00001",
    "/submissions/KIL-00001/files/1",
    "/search?q=late",
    "/attention",
    "/questions",
    "/questions/a",
    "/logout",
]
ACTIONS = ["reparse", "resend-ack", "timeliness", "not-response", "notes", "tags", "respondent"]


def _rows(html: str) -> list[str]:
    return re.findall(r'<td><a href="/submissions/(KIL-\d+)">', html)


class TestWithoutSession:
    @pytest.mark.parametrize("path", PAGES)
    def test_every_page_sends_to_login(self, anonymous: TestClient, path: str) -> None:
        """Nothing but /login and /healthz is shown without a session."""
        response = anonymous.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=%2F")

    @pytest.mark.parametrize("name", ACTIONS)
    def test_every_action_sends_to_login(self, anonymous: TestClient, name: str) -> None:
        """A POST without a session changes nothing and asks for a sign-in."""
        response = anonymous.post(
            f"/submissions/KIL-00001/{name}", data={"csrf": "x"}, follow_redirects=False
        )
        assert response.status_code == 303 and response.headers["location"].startswith("/login")

    def test_healthz(self, anonymous: TestClient) -> None:
        """/healthz answers 200 without a session and says nothing else."""
        response = anonymous.get("/healthz")
        assert response.status_code == 200 and response.text == "ok"

    def test_security_headers(self, anonymous: TestClient) -> None:
        """Strict CSP, nosniff, referrer policy and frame denial on every response."""
        response = anonymous.get("/login")
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["cache-control"] == "no-store"
        assert "<script" not in response.text and "style=" not in response.text


class TestSignIn:
    def test_wrong_password(self, anonymous: TestClient) -> None:
        """A wrong password is refused with one sentence and no session."""
        page = anonymous.get("/login")
        response = anonymous.post(
            "/login",
            data={"email": ADMIN, "password": "wrong password!", "csrf": csrf_of(page.text)},
            follow_redirects=False,
        )
        assert response.status_code == 400
        assert "email address or password is wrong" in response.text
        assert anonymous.get("/", follow_redirects=False).status_code == 303

    def test_login_needs_its_csrf_token(self, anonymous: TestClient) -> None:
        """The sign-in form itself carries a token bound to a signed cookie."""
        anonymous.get("/login")
        response = anonymous.post(
            "/login", data={"email": ADMIN, "password": PASSWORD, "csrf": "forged"}
        )
        assert response.status_code == 403
        assert anonymous.get("/", follow_redirects=False).status_code == 303

    def test_cookie_flags_and_next(self, anonymous: TestClient) -> None:
        """The session cookie is HttpOnly and SameSite=Lax; sign-in returns to the page asked for."""
        page = anonymous.get("/login?next=/attention")
        response = anonymous.post(
            "/login",
            data={
                "email": ADMIN.upper(),
                "password": PASSWORD,
                "csrf": csrf_of(page.text),
                "next": "/attention",
            },
            follow_redirects=False,
        )
        assert response.headers["location"] == "/attention"
        cookie = next(
            v
            for k, v in response.headers.multi_items()
            if k == "set-cookie" and v.startswith("intake_session=")
        )
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=43200" in cookie
        assert "Secure" not in cookie  # plain http in this test; Secure behind HTTPS

    def test_secure_cookie_over_https(self, web_app: App) -> None:
        """Served over HTTPS (as the proxy says), the session cookie is Secure."""
        with TestClient(create_app(web_app), base_url="https://testserver") as client:
            page = client.get("/login")
            response = client.post(
                "/login",
                data={"email": STAFF, "password": PASSWORD, "csrf": csrf_of(page.text)},
                follow_redirects=False,
            )
        assert "Secure" in response.headers["set-cookie"]

    def test_open_redirect_refused(self, anonymous: TestClient) -> None:
        """``next`` can only be a path on this site."""
        page = anonymous.get("/login")
        response = anonymous.post(
            "/login",
            data={
                "email": STAFF,
                "password": PASSWORD,
                "csrf": csrf_of(page.text),
                "next": "//evil.example/",
            },
            follow_redirects=False,
        )
        assert response.headers["location"] == "/"

    def test_rate_limited_per_account(self, anonymous: TestClient) -> None:
        """After five failures the account is refused, even with the right password."""
        for _ in range(5):
            page = anonymous.get("/login")
            anonymous.post(
                "/login",
                data={"email": STAFF, "password": "not it at all", "csrf": csrf_of(page.text)},
            )
        page = anonymous.get("/login")
        response = anonymous.post(
            "/login", data={"email": STAFF, "password": PASSWORD, "csrf": csrf_of(page.text)}
        )
        assert response.status_code == 429 and "Too many failed sign-ins" in response.text
        sign_in(anonymous, ADMIN)  # another account from the same address still can

    def test_rate_limited_per_address(self, web_app: App) -> None:
        """Failures spread over many accounts from one address are refused too."""
        with TestClient(create_app(web_app)) as client:
            for n in range(20):
                page = client.get("/login")
                client.post(
                    "/login",
                    data={
                        "email": f"u{n}@example.org",
                        "password": "x" * 12,
                        "csrf": csrf_of(page.text),
                    },
                )
            page = client.get("/login")
            response = client.post(
                "/login", data={"email": ADMIN, "password": PASSWORD, "csrf": csrf_of(page.text)}
            )
        assert response.status_code == 429

    def test_logout_ends_the_session(self, admin: TestClient) -> None:
        """Signing out ends the session, even for a copy of the old cookie."""
        old = admin.cookies.get("intake_session")
        page = admin.get("/logout")
        response = admin.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
        assert response.headers["location"] == "/login"
        admin.cookies.set("intake_session", old)
        assert admin.get("/", follow_redirects=False).status_code == 303

    def test_removed_account_is_signed_out(self, staff: TestClient, web_app: App) -> None:
        """Removing an account ends its sessions at once (the role is read per request)."""
        with web_app.sessions() as session:
            user_store.remove_user(session, STAFF)
            session.commit()
        assert staff.get("/", follow_redirects=False).status_code == 303


class TestPages:
    def test_dashboard(self, staff: TestClient) -> None:
        """Totals, the deadline, an SVG chart of the last 30 days and the worker's health."""
        html = staff.get("/").text
        assert re.search(r"<dt>Received</dt><dd>5</dd>", html)
        assert "closed" in html and "Fri 27 Jul 2018 23:59:59 BST" in html
        assert html.count('class="bar"') == 30 and "<svg" in html
        assert "Last successful poll: never" in html

    def test_list_newest_first_with_filters(self, staff: TestClient) -> None:
        """The list is newest first; each filter narrows it and says how many match."""
        html = staff.get("/submissions").text
        assert _rows(html) == ["KIL-00002", "KIL-00003", "KIL-00004", "KIL-00005", "KIL-00001"]
        assert "5 response(s)" in html
        assert _rows(staff.get("/submissions?timeliness=late").text) == ["KIL-00002", "KIL-00003"]
        assert _rows(staff.get("/submissions?timeliness=sent_in_time").text) == ["KIL-00003"]
        assert _rows(staff.get("/submissions?timeliness=on_time").text) == [
            "KIL-00004",
            "KIL-00005",
            "KIL-00001",
        ]
        assert _rows(staff.get("/submissions?unreadable=1").text) == ["KIL-00005"]
        assert _rows(staff.get("/submissions?ack=off").text) == _rows(html)
        assert _rows(staff.get("/submissions?status=failed").text) == []
        dated = staff.get("/submissions?from=2018-07-25&to=2018-07-26").text
        assert _rows(dated) == ["KIL-00004", "KIL-00005"] and "2 response(s)" in dated

    def test_list_bad_filter_is_explained(self, staff: TestClient) -> None:
        """A bad date or choice is named on the page, not a server error."""
        html = staff.get("/submissions?from=27/07/2018&status=bogus").text
        assert "from: use a date such as 2018-07-27" in html
        assert "status: unknown choice" in html

    def test_paging(self, staff: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
        """Pages link to each other and keep the filters."""
        from intake.web import pages

        monkeypatch.setattr(pages, "PAGE_SIZE", 2)
        first = staff.get("/submissions?timeliness=on_time").text
        assert _rows(first) == ["KIL-00004", "KIL-00005"] and "page 1 of 2" in first
        assert 'href="?timeliness=on_time&amp;page=2"' in first
        assert _rows(staff.get("/submissions?timeliness=on_time&page=2").text) == ["KIL-00001"]

    def test_detail(self, staff: TestClient) -> None:
        """A response shows arrival in UK time and how it was decided, texts and files."""
        html = staff.get("/submissions/kil-00003").text
        assert "Sat 28 Jul 2018 00:20:00 BST" in html
        assert "the newest Received header" in html
        assert "Sent before the deadline but received after it" in html
        html = staff.get("/submissions/KIL-00001").text
        assert "evidence.docx" in html and "notes.txt" in html
        assert "Question 1: more buses." in html
        assert 'href="/submissions/KIL-00001/files/1" download' in html
        assert "Admin actions" not in html  # staff see no admin forms

    def test_unreadable_file_says_why(self, staff: TestClient) -> None:
        """An unreadable file shows its status and the message for a person."""
        html = staff.get("/submissions/KIL-00005").text
        assert "results.pdf" in html and 'class="problem-text"' in html

    def test_unknown_reference(self, staff: TestClient) -> None:
        """An unknown or malformed reference is a 404 page."""
        assert staff.get("/submissions/KIL-99999").status_code == 404
        assert staff.get("/submissions/..%2Fetc").status_code == 404
        assert staff.get("/submissions/KIL-00001/files/9").status_code == 404

    def test_download_is_the_original(self, staff: TestClient, web_app: App) -> None:
        """The file comes back byte for byte, always as an attachment, never inline."""
        response = staff.get("/submissions/KIL-00001/files/1")
        assert response.content == DOCX.read_bytes()
        assert response.headers["content-type"] == "application/octet-stream"
        assert response.headers["content-disposition"].startswith("attachment;")
        with web_app.sessions() as session:
            raw = repo.load_raw(session, repo.get_by_reference(session, "KIL-00001").id)
        parts = read_message(raw)[1]
        assert hashlib.sha256(parts[0].data).digest() == hashlib.sha256(response.content).digest()

    def test_script_subject_is_text(self, staff: TestClient) -> None:
        """An HTML/script payload in a subject is escaped everywhere it is shown."""
        for path in ["/submissions", "/submissions/KIL-00004", "/search?q=script"]:
            html = staff.get(path).text
            assert "<script>alert" not in html and "<b>Bold</b>" not in html
            assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
        assert "<img src=x" not in staff.get("/submissions/KIL-00004").text

    def test_search_sender_and_subject(self, staff: TestClient) -> None:
        """Search finds by sender or subject, any case, and treats % and _ literally."""
        html = staff.get("/search?q=NORTHTOWN").text
        assert "KIL-00001" in html and "1 result(s)" in html
        assert "KIL-00002" in staff.get("/search?q=bob@example").text
        assert "0 result(s)" in staff.get("/search?q=%25").text
        assert "result(s)" not in staff.get("/search").text

    def test_attention_lists_what_needs_a_person(self, staff: TestClient) -> None:
        """The work queue lists the unreadable file and the late-but-sent-in-time response."""
        html = staff.get("/attention").text
        assert "results.pdf" in html and 'href="/submissions/KIL-00005"' in html
        assert 'href="/submissions/KIL-00003"' in html
        assert "/reparse" not in html  # the fixes are admins' forms

    def test_admin_sees_fixes_in_the_queue(self, admin: TestClient) -> None:
        html = admin.get("/attention").text
        assert 'action="/submissions/KIL-00005/reparse"' in html
        assert 'action="/submissions/KIL-00003/timeliness"' in html

    def test_static_css(self, anonymous: TestClient) -> None:
        response = anonymous.get("/static/style.css")
        assert response.status_code == 200 and ":focus-visible" in response.text


class TestActions:
    def _post(self, client: TestClient, ref: str, name: str, **fields: str):
        page = client.get(f"/submissions/{ref}")
        return client.post(
            f"/submissions/{ref}/{name}",
            data={"csrf": csrf_of(page.text), **fields},
            follow_redirects=False,
        )

    def test_post_without_csrf_refused(self, admin: TestClient) -> None:
        """A state change without the form's token is refused and changes nothing."""
        for fields in ({}, {"csrf": "forged"}):
            response = admin.post(
                "/submissions/KIL-00003/timeliness",
                data={"timeliness": "on_time", "reason": "posted", **fields},
            )
            assert response.status_code == 403 and "did not come from this site" in response.text
        assert "Set by staff" not in admin.get("/submissions/KIL-00003").text

    @pytest.mark.parametrize("name", ["reparse", "resend-ack", "timeliness", "not-response"])
    def test_staff_refused_admin_actions(self, staff: TestClient, name: str) -> None:
        """Admin actions are checked on the server, not only hidden from staff."""
        response = self._post(staff, "KIL-00003", name, timeliness="on_time", reason="x")
        assert response.status_code == 403 and "Only an admin" in response.text
        assert "KIL-00003" in staff.get("/submissions?timeliness=late").text

    def test_set_timeliness_audited_with_name(self, admin: TestClient) -> None:
        """An admin sets on time with a reason; the audit trail names them."""
        response = self._post(
            admin, "KIL-00003", "timeliness", timeliness="on_time", reason="posted in time"
        )
        assert response.status_code == 303
        html = admin.get(response.headers["location"]).text
        assert "On time / late was set" in html and "Set by staff: posted in time" in html
        assert f"set-timeliness: by {ADMIN}: late -&gt; on_time: posted in time" in html

    def test_reason_required(self, admin: TestClient) -> None:
        response = self._post(admin, "KIL-00003", "timeliness", timeliness="on_time", reason=" ")
        assert response.status_code == 400 and "give a reason" in response.text

    def test_reparse(self, admin: TestClient) -> None:
        """An admin reads a response again; the audit trail records it."""
        response = self._post(admin, "KIL-00005", "reparse")
        assert response.status_code == 303
        html = admin.get(response.headers["location"]).text
        assert "Read again from the stored message." in html
        assert f"reparse: by {ADMIN}: 1 submission(s)" in html

    def test_resend_without_smtp_explains(self, admin: TestClient) -> None:
        """Resending with acknowledgements off says so in one sentence."""
        response = self._post(admin, "KIL-00001", "resend-ack", reason="asked again")
        assert response.status_code == 400 and "acknowledgements are off" in response.text

    def test_not_a_response(self, admin: TestClient) -> None:
        """Marked "not a response", a message leaves the list and the counts."""
        response = self._post(admin, "KIL-00004", "not-response", reason="spam")
        assert response.status_code == 303
        assert "KIL-00004" not in _rows(admin.get("/submissions").text)
        assert "4 response(s)" in admin.get("/submissions").text
        html = admin.get("/submissions/KIL-00004").text
        assert "filed as not_response" in html and f"by {ADMIN}" in html

    def test_staff_note(self, staff: TestClient) -> None:
        """Staff add a private note; it is shown escaped with their name."""
        response = self._post(staff, "KIL-00001", "notes", text="<i>check</i> question 2")
        assert response.status_code == 303
        html = staff.get("/submissions/KIL-00001").text
        assert "&lt;i&gt;check&lt;/i&gt; question 2" in html and STAFF in html


def test_trusted_header(db_url: str, tmp_path) -> None:
    """With [web] trusted_user_header, the proxy's header signs a known account in."""
    import dataclasses

    from tests.web.conftest import seeded_app

    app = seeded_app(db_url, tmp_path / "mail")
    web = dataclasses.replace(app.settings.web, trusted_user_header="X-Remote-User")
    app.settings = dataclasses.replace(app.settings, web=web)
    with TestClient(create_app(app)) as client:
        assert client.get("/", headers={"X-Remote-User": STAFF}).status_code == 200
        assert (
            client.get(
                "/", headers={"X-Remote-User": "nobody@example.org"}, follow_redirects=False
            ).status_code
            == 303
        )
    app.close()


class TestHostileInput:
    def test_nul_bytes_and_odd_paths(self, staff: TestClient, anonymous: TestClient) -> None:
        """NUL characters and odd references are answered, never a server error."""
        page = anonymous.get("/login")
        response = anonymous.post(
            "/login",
            data={
                "email": "a\x00@example.org",
                "password": "x\x00" * 8,
                "csrf": csrf_of(page.text),
            },
        )
        assert response.status_code == 400
        assert staff.get("/search?q=bus%00es").status_code == 200
        assert staff.get("/submissions?status=%00&from=%00").status_code == 200
        assert staff.get("/submissions/KIL-0%000").status_code == 404
        page = staff.get("/submissions/KIL-00001")
        response = staff.post(
            "/submissions/KIL-00001/notes",
            data={"csrf": csrf_of(page.text), "text": "a\x00b"},
            follow_redirects=False,
        )
        assert response.status_code == 303
        assert "ab" in staff.get("/submissions/KIL-00001").text
        response = staff.post(
            "/submissions/KIL%00/notes", data={"csrf": csrf_of(page.text), "text": "x"}
        )
        assert response.status_code == 404


def test_generated_key_is_shared(web_app: App) -> None:
    """Without a key in the environment, one is generated once and kept in the database:
    a second web process on the same database accepts the first one's sessions."""
    assert web_app.settings.web.secret_key == ""
    with TestClient(create_app(web_app)) as first:
        sign_in(first, STAFF)
        cookie = first.cookies.get("intake_session")
    with TestClient(create_app(web_app)) as second:
        second.cookies.set("intake_session", cookie)
        assert second.get("/", follow_redirects=False).status_code == 200
        second.cookies.set("intake_session", cookie[:-2] + "xx")
        assert second.get("/", follow_redirects=False).status_code == 303
