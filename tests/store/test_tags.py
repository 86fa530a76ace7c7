"""Passages, tags and respondent types in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from store import db, repo, tags
from store.erasure import erase_submissions
from tests.conftest import fresh_database

NOW = dt.datetime(2018, 7, 28, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def sessions(db_url: str):
    engine = db.open_database(db_url)
    yield db.make_session_factory(engine)
    engine.dispose()


def _submission(session, n: int = 0) -> int:
    stored = repo.store_raw(
        session,
        raw=b"Subject: x\r\n\r\nbody",
        message_id=f"<t{n or ''}@x>",
        message_id_derived=False,
        source="test",
        fetched_at=NOW,
        reference_prefix="KIL",
    )
    return stored.submission_id


def _run(session, sid: int, texts: list[tuple[str, tuple[str, ...]]], kind="charity") -> None:
    passages = [
        tags.NewPassage(
            "body", n, text, tags=tuple(tags.NewTag(k, 0.8, f"keywords: {k}") for k in keys)
        )
        for n, (text, keys) in enumerate(texts)
    ]
    tags.save_auto(session, sid, passages, (kind, "Riverside Trust", ["charity number"]), NOW)
    session.commit()


class TestStaffDecisionsSurvive:
    def test_rerun_keeps_rejections_additions_and_respondent(self, sessions) -> None:
        """GIVEN staff rejected, added and corrected; WHEN tagging runs again; THEN all stand."""
        with sessions() as session:
            sid = _submission(session)
            _run(session, sid, [("The contract failed.", ("b",)), ("Volunteers help.", ())])
            tags.set_tag(session, sid, 1, "b", tags.REJECTED, "ann", NOW)
            tags.set_tag(session, sid, 2, "c", tags.TAGGED, "ann", NOW)
            tags.set_respondent(session, sid, NOW, "ann", kind="community_organisation")
            session.commit()
            _run(session, sid, [("The contract failed.", ("b", "a")), ("Volunteers help.", ("d",))])
            found = {
                (p.seq, t.question_key): (t.source, t.decision)
                for p, ts in tags.passages_of(session, sid)
                for t in ts
            }
            assert found == {
                (1, "b"): ("staff", "rejected"),
                (1, "a"): ("auto", "tagged"),
                (2, "c"): ("staff", "tagged"),
                (2, "d"): ("auto", "tagged"),
            }
            profile = tags.respondent_of(session, sid)
            assert profile is not None
            assert (profile.respondent_type, profile.type_source) == (
                "community_organisation",
                "staff",
            )
            assert (profile.organisation, profile.organisation_source) == (
                "Riverside Trust",
                "auto",
            )

    def test_staff_tagged_passage_kept_when_text_changes(self, sessions) -> None:
        """A passage a person tagged stays (not current) when a re-read no longer produces it."""
        with sessions() as session:
            sid = _submission(session)
            _run(session, sid, [("Old words.", ())])
            tags.set_tag(session, sid, 1, "c", tags.TAGGED, "ann", NOW)
            session.commit()
            _run(session, sid, [("New words.", ("a",))])
            rows = [
                (p.text, p.current, [t.question_key for t in ts])
                for p, ts in tags.passages_of(session, sid)
            ]
            assert rows == [("New words.", True, ["a"]), ("Old words.", False, ["c"])]

    def test_a_repeated_passage_is_not_stored_again_on_each_run(self, sessions) -> None:
        """A response that says "No comment." twice keeps two passages, however often
        it is tagged (each stored passage is matched once)."""
        with sessions() as session:
            sid = _submission(session)
            for _ in range(3):
                _run(session, sid, [("No comment.", ("a",)), ("Other.", ()), ("No comment.", ())])
            rows = [
                (p.seq, p.text, p.current, [t.question_key for t in ts])
                for p, ts in tags.passages_of(session, sid)
            ]
            assert rows == [
                (1, "No comment.", True, ["a"]),
                (2, "Other.", True, []),
                (3, "No comment.", True, []),
            ]

    def test_nul_bytes_and_long_names_are_stored(self, sessions) -> None:
        """PostgreSQL refuses NUL; a 600-character file name is cut to the column."""
        with sessions() as session:
            sid = _submission(session)
            passages = [
                tags.NewPassage("x" * 600, 0, "bad\x00text", tags=(tags.NewTag("a", 0.9, "r\x00"),))
            ]
            tags.save_auto(session, sid, passages, ("unknown", "o" * 400, []), NOW)
            session.commit()
            ((passage, found),) = tags.passages_of(session, sid)
            assert passage.text == "badtext" and len(passage.source_name) == 500
            assert found[0].reason == "r"


class TestQueries:
    def test_counts_evidence_and_purge(self, sessions) -> None:
        """Counts per question and type; evidence leaves out rejections; purge deletes passages."""
        with sessions() as session:
            sid = _submission(session)
            _run(session, sid, [("One.", ("a", "b")), ("Two.", ("a",))])
            tags.set_tag(session, sid, 1, "b", tags.REJECTED, "ann", NOW)
            session.commit()
            assert tags.question_counts(session) == {"a": 1}
            assert tags.type_counts(session) == {"charity": 1}
            rows = tags.evidence_rows(session, "a")
            assert [(r.reference, r.text, r.organisation) for r in rows] == [
                ("KIL-00001", "One.", "Riverside Trust"),
                ("KIL-00001", "Two.", "Riverside Trust"),
            ]
            erase_submissions(session, [sid], anonymise=False)
            session.commit()
            assert session.scalar(select(func.count()).select_from(tags.Passage)) == 0
            assert session.scalar(select(func.count()).select_from(tags.PassageTag)) == 0


def _passages(*texts: tuple[str, tuple[str, ...]]) -> tuple[tags.NewPassage, ...]:
    return tuple(
        tags.NewPassage("body", n, text, tags=tuple(tags.NewTag(k, 0.7, "r") for k in keys))
        for n, (text, keys) in enumerate(texts)
    )


def _tagging_history(url: str, together: bool) -> dict[str, list[tuple[Any, ...]]]:
    """Tag three responses, let staff decide, tag them again: at once or one by one."""
    engine = db.open_database(url)
    sessions = db.make_session_factory(engine)
    with sessions() as session:
        ids = [_submission(session, n) for n in range(3)]
        first = [
            _passages(("Alpha.", ("a", "b")), ("Beta.", ("c",)), ("Same.", ()), ("Same.", ("d",))),
            _passages(("Gamma.", ("a",))),
            _passages(("Delta.", ("b", "c"))),
        ]
        for sid, passages in zip(ids, first, strict=True):
            tags.save_auto(session, sid, passages, ("charity", "Riverside Trust", ["x"]), NOW)
        tags.set_tag(session, ids[0], 2, "c", tags.REJECTED, "ann", NOW)
        tags.set_tag(session, ids[1], 1, "d", tags.TAGGED, "ann", NOW)
        tags.set_respondent(session, ids[2], NOW, "ann", kind="business")
        tags.set_respondent(session, ids[0], NOW, "ann", organisation="Ours")
        tags.set_respondent(session, ids[1], NOW, "ann", kind="academic", organisation="U")
        # The last response's automatic tags now have the highest ids (SQLite may give
        # them again once they are deleted): the order of deletes and inserts shows.
        tags.save_auto(session, ids[2], first[2], ("charity", "", []), NOW)
        later = NOW + dt.timedelta(days=1)
        runs = [
            tags.AutoRun(
                ids[0],
                _passages(("Alpha.", ("a",)), ("New.", ("b",)), ("Same.", ("d",))),
                ("business", "Other Ltd", ["y"]),
            ),
            tags.AutoRun(ids[1], _passages(("Gamma.", ("a", "d"))), ("individual", "", [])),
            tags.AutoRun(
                ids[2], _passages(("Delta.", ("b",)), ("Epsilon.", ("c",))), ("unknown", "", [])
            ),
        ]
        if together:
            tags.save_auto_many(session, runs, later)
        else:
            for run in runs:
                tags.save_auto(session, run.submission_id, run.passages, run.respondent, later)
        session.commit()
        found = {
            table.__tablename__: sorted(
                tuple(map(repr, row))
                for row in session.execute(select(*table.__table__.columns)).all()
            )
            for table in (tags.Passage, tags.PassageTag, tags.RespondentProfile)
        }
    engine.dispose()
    return found


def test_saving_runs_at_once_leaves_what_one_by_one_leaves(db_url: str, tmp_path: Path) -> None:
    """GIVEN staff decisions and changed passages; WHEN three runs are saved at once;
    THEN every row (ids included) is what saving them one after another leaves."""
    together = _tagging_history(db_url, together=True)
    kind = "postgres" if db_url.startswith("postgresql") else "sqlite"
    with fresh_database(kind, tmp_path / "apart.db") as other:
        apart = _tagging_history(other, together=False)
    assert together == apart
    # The run kept what staff decided, and a passage a person tagged though it is gone.
    assert any("'staff'" in row and "'rejected'" in row for row in together["passage_tags"])
    assert any("'Beta.'" in row and "False" in row for row in together["passages"])
