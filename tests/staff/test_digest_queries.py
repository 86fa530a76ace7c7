"""The digest reads what it lists in a fixed number of queries, however much came in."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import event

from intake.app import App
from intake.staff.daily import build_digest
from intake.staff.digest import digest_text
from tests.conftest import make_settings
from tests.store.test_search_index import _submission

NOW = dt.datetime(2018, 7, 20, 10, 0, tzinfo=dt.UTC)


def _store(app: App, first: int, count: int) -> None:
    """Responses with a PDF each and a small logo (which the digest leaves out)."""
    with app.sessions() as session:
        for number in range(first, first + count):
            files = [("answer.pdf", "Text of the file."), ("logo.png", "")]
            submission = _submission(number, "My answer.", files)
            pdf, logo = submission.attachments
            pdf.content_type, pdf.size = "application/pdf", 50_000
            logo.content_type, logo.size = "image/png", 900
            session.add(submission)
        session.commit()


def _queries_for_digest(app: App) -> tuple[int, str]:
    statements: list[str] = []

    def count(_conn, _cursor, statement, _params, _context, _many) -> None:
        statements.append(statement)

    event.listen(app.engine, "before_cursor_execute", count)
    try:
        with app.sessions() as session:
            text = digest_text(build_digest(session, app.settings, NOW, None))
    finally:
        event.remove(app.engine, "before_cursor_execute", count)
    return len(statements), text


def test_digest_queries_do_not_grow_with_the_submissions(db_url: str) -> None:
    """Ten responses or forty with two files each: the same number of queries (no query
    per submission or per attachment), and every response and its file listed."""
    app = App(make_settings(db_url))
    try:
        _store(app, 1, 10)
        few, text = _queries_for_digest(app)
        assert "KIL-00010" in text and "answer.pdf" in text
        _store(app, 11, 30)
        many, text = _queries_for_digest(app)
        assert "KIL-00040" in text
        assert text.count("answer.pdf") >= 40
    finally:
        app.close()
    assert many == few, (few, many)
