"""Staff review of question tags from the browser's side, over HTTP, on both databases.

The seeded responses include a council's answer that the tagging stage splits into
passages; staff confirm, reject, add and set the respondent, and a re-run keeps it all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from intake.app import App
from intake.stages.tag import tag_submission
from intake.web import create_app
from store import repo
from tests.web.conftest import ADMIN, COUNCIL_REF, STAFF, csrf_of, seeded_app, sign_in

REF = COUNCIL_REF


@pytest.fixture
def tagged_app(db_url: str, tmp_path: Path) -> Iterator[App]:
    app = seeded_app(db_url, tmp_path / "mail", questions=True)
    yield app
    app.close()


@pytest.fixture
def staff(tagged_app: App) -> Iterator[TestClient]:
    with TestClient(create_app(tagged_app)) as client:
        yield sign_in(client, STAFF)


def _post(client: TestClient, path: str, **fields: str) -> str:
    page = client.get(f"/submissions/{REF}")
    response = client.post(
        f"/submissions/{REF}/{path}",
        data={"csrf": csrf_of(page.text), **fields},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client.get(response.headers["location"]).text


def _tags_of(html: str, seq: int) -> str:
    start = html.index(f'id="passage-{seq}"')
    return html[start : html.index("</li>\n", html.index('<ul class="tags">', start))]


def _retag(app: App) -> None:
    with app.sessions() as session:
        tag_submission(session, repo.get_by_reference(session, REF).id, app.settings, app.now())
        session.commit()


class TestReview:
    def test_passages_and_their_questions_are_shown(self, staff: TestClient) -> None:
        """Each passage is listed with its number, where it came from and its automatic tags."""
        html = staff.get(f"/submissions/{REF}").text
        assert "Passage 2, response.txt" in html
        assert re.search(r"<strong class=\"ok\">b: [^<]+</strong>\s*· tagged\s*automatically", html)
        assert "Respondent: <strong>local authority</strong>" in html

    def test_reject_add_and_respondent_survive_a_rerun(
        self, staff: TestClient, tagged_app: App
    ) -> None:
        """A rejection, an added question and a respondent set by staff are kept by a re-run
        of the tagging stage, leave the evidence page, and are audited by name."""
        assert f"/submissions/{REF}#passage-2" in staff.get("/questions/b").text
        html = _post(staff, "tags", passage="2", question="b", decision="rejected")
        assert "Your decision on the passage was kept" in html
        _post(staff, "tags", passage="1", question="d", decision="tagged")
        _post(staff, "respondent", kind="community_organisation", organisation="Northmoor CA")
        _retag(tagged_app)
        html = staff.get(f"/submissions/{REF}").text
        assert re.search(
            r"b: [^<]+</strong>\s*· rejected\s*by staff@example.org", _tags_of(html, 2)
        )
        assert re.search(r"d: [^<]+</strong>\s*· tagged\s*by staff@example.org", _tags_of(html, 1))
        assert "community organisation</strong>" in html and "Northmoor CA" in html
        assert f"tag_rejected: 2:b by {STAFF}" in html
        assert f"/submissions/{REF}#passage-2" not in staff.get("/questions/b").text
        assert f"/submissions/{REF}#passage-1" in staff.get("/questions/d").text

    def test_questions_page_counts_responses(self, staff: TestClient) -> None:
        """The questions page counts each response once per question, with the types."""
        html = staff.get("/questions").text
        row = re.search(r'href="/questions/c">c: [^<]+</a></td><td>(\d+)</td>', html)
        assert row is not None and int(row.group(1)) >= 1
        assert "local authority" in html
        assert staff.get("/questions/zz").status_code == 404


class TestRefused:
    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"passage": "2", "question": "zz", "decision": "tagged"}, "no question &#39;zz&#39;"),
            ({"passage": "two", "question": "b", "decision": "tagged"}, "choose a passage"),
            ({"passage": "99", "question": "b", "decision": "tagged"}, "no passage 99"),
            ({"passage": "2", "question": "b", "decision": "maybe"}, "a decision is"),
        ],
    )
    def test_bad_decision_is_one_sentence(
        self, staff: TestClient, fields: dict[str, str], message: str
    ) -> None:
        """A decision that cannot apply changes nothing and says why in one sentence."""
        page = staff.get(f"/submissions/{REF}")
        response = staff.post(
            f"/submissions/{REF}/tags", data={"csrf": csrf_of(page.text), **fields}
        )
        assert response.status_code == 400 and message in response.text
        assert "Traceback" not in response.text

    def test_no_csrf_no_change(self, staff: TestClient) -> None:
        """Without the form's token the decision is refused and nothing is recorded."""
        response = staff.post(
            f"/submissions/{REF}/tags",
            data={"csrf": "forged", "passage": "2", "question": "b", "decision": "rejected"},
        )
        assert response.status_code == 403
        assert "tag_rejected" not in staff.get(f"/submissions/{REF}").text

    def test_anonymous_is_sent_to_login(self, tagged_app: App) -> None:
        """A decision without a session changes nothing."""
        with TestClient(create_app(tagged_app)) as client:
            response = client.post(
                f"/submissions/{REF}/respondent",
                data={"csrf": "x", "kind": "individual"},
                follow_redirects=False,
            )
            assert response.headers["location"].startswith("/login")
            sign_in(client, ADMIN)
            assert "set_respondent" not in client.get(f"/submissions/{REF}").text

    def test_organisation_is_escaped(self, staff: TestClient) -> None:
        """An organisation name with markup is shown as text."""
        html = _post(staff, "respondent", kind="individual", organisation='<script>x</script>"')
        assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
