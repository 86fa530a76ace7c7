"""Campaigns and versions stored, on SQLite and PostgreSQL, from real messages.

Messages go through the real pipeline (store raw, read, then the cluster stage hook);
recomputes and staff decisions then work on what is stored.
"""

from __future__ import annotations

import datetime as dt
import json
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from intake.app import App
from intake.staff import campaigns as staff
from intake.staff.export import iter_records
from intake.stages.cluster import recompute_all
from intake.worker import import_path
from store import campaigns as store
from store import repo, tags
from store.campaigns import Campaign, CampaignMember
from store.errors import NotFound
from store.models import Submission
from store.responses import SubmissionVersion
from store.work import StageRow
from tests.analysis.test_campaigns import INDEPENDENT, OWN_END, OWN_START, TEMPLATE
from tests.conftest import make_settings

NOW = dt.datetime(2018, 7, 20, 12, 0, tzinfo=dt.UTC)


def write_mail(folder: Path, n: int, sender: str, body: str, subject: str = "Response") -> Path:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "keepitlocal@example.org"
    message["Subject"] = subject
    message["Date"] = format_datetime(NOW + dt.timedelta(hours=n))
    message["Message-ID"] = f"<m{n}@test.example>"
    message.set_content(body)
    path = folder / f"{n:03d}.eml"
    path.write_bytes(bytes(message))
    return path


CAMPAIGN_MAIL = [
    ("ann@gmail.com", TEMPLATE),
    ("bob@gmail.com", TEMPLATE),
    ("cat@outlook.com", OWN_START + "\n\n" + TEMPLATE),
    ("dan@example.net", INDEPENDENT[0]),
    ("eve@yahoo.co.uk", TEMPLATE + "\n\n" + OWN_END),
]


def import_all(app: App, folder: Path, mails: list[tuple[str, str]], start: int = 0) -> None:
    folder.mkdir(exist_ok=True)
    with app.pipeline(acks=False) as pipeline:
        for n, (sender, body) in enumerate(mails, start=start):
            import_path(pipeline, write_mail(folder, n, sender, body))
        counts = pipeline.read_pending()
    assert counts.failed == 0


@pytest.fixture
def app(db_url: str):
    app = App(make_settings(db_url), now=lambda: NOW)
    yield app
    app.close()


def _members(app: App) -> dict[str, tuple[int, str]]:
    with app.sessions() as session:
        rows = session.execute(
            select(CampaignMember.submission_id, CampaignMember.campaign_id, CampaignMember.role)
        )
        found = {sid: (cid, role) for sid, cid, role in rows}
        refs = store.references(session, found)
    return {refs[sid] or "": value for sid, value in found.items()}


def test_the_stage_groups_copies_as_they_arrive(app: App, tmp_path: Path) -> None:
    import_all(app, tmp_path / "mail", CAMPAIGN_MAIL)
    members = _members(app)
    assert set(members) == {"KIL-00001", "KIL-00002", "KIL-00003", "KIL-00005"}
    assert len({cid for cid, _ in members.values()}) == 1
    assert members["KIL-00001"][1] == "template"
    assert members["KIL-00002"][1] == "copy"
    assert members["KIL-00003"][1] == "copy_with_additions"
    with app.sessions() as session:
        counts = store.honest_counts(session)
        assert (counts.received, counts.campaign_copies, counts.campaigns) == (5, 4, 1)
        assert (counts.unique, counts.with_own_text, counts.superseded) == (2, 2, 0)
        records = {r["reference"]: r for r in iter_records(session, repo.select_submissions())}
    assert records["KIL-00004"]["campaign"] is None
    third = records["KIL-00003"]["campaign"]
    assert third["role"] == "copy_with_additions" and third["size"] == 4
    assert third["additions"] == OWN_START.rstrip(".")
    json.dumps(records)  # the export stays plain JSON
    with app.sessions() as session:
        ids = {ref: repo.get_by_reference(session, ref).id for ref in records}
        assert store.text_for_tagging(session, ids["KIL-00002"]) is None
        assert store.text_for_tagging(session, ids["KIL-00003"]) == OWN_START.rstrip(".")
        assert "patient capital" in (store.text_for_tagging(session, ids["KIL-00001"]) or "")
        assert store.text_for_tagging(session, ids["KIL-00004"]) == INDEPENDENT[0]


def test_a_revised_version_replaces_the_earlier_and_leaves_the_campaign(
    app: App, tmp_path: Path
) -> None:
    revised = "Please use this one instead of my first email.\n\n" + TEMPLATE + "\n\n" + OWN_END
    import_all(app, tmp_path / "mail", [*CAMPAIGN_MAIL, ("Bob@gmail.com", revised)])
    members = _members(app)
    assert "KIL-00002" not in members  # superseded: counted once, as its later version
    assert members["KIL-00006"][1] == "copy_with_additions"
    with app.sessions() as session:
        counts = store.honest_counts(session)
        assert (counts.received, counts.superseded, counts.campaign_copies) == (6, 1, 4)
        sub = repo.get_by_reference(session, "KIL-00002")
        shown = staff.response_campaign(session, sub)
        assert shown.superseded_by == "KIL-00006" and shown.campaign is None
        assert shown.diff is not None and "+Please use this one instead" in shown.diff
        later = staff.response_campaign(session, repo.get_by_reference(session, "KIL-00006"))
        assert later.supersedes == "KIL-00002"


def test_staff_decisions_survive_a_recompute(app: App, tmp_path: Path) -> None:
    other = TEMPLATE.replace("Scottish National Investment Bank", "Welsh development fund")
    second = "\n\n".join(INDEPENDENT[1:4]) + "\n\n" + OWN_END
    import_all(
        app,
        tmp_path / "mail",
        [
            *CAMPAIGN_MAIL,
            ("fay@gmail.com", second),
            ("gus@gmail.com", second),
            ("hal@x.org", other),
        ],
    )
    with app.sessions() as session:
        listing = staff.list_campaigns(session)
        assert [c.size for c in listing] == [5, 2]  # "other" joins the first: a few words changed
        big, small = listing[0].id, listing[1].id
        staff.name(session, big, "Bank campaign\x00 by Friends", NOW)
        new_id = staff.split(session, app.settings.campaigns, big, ["KIL-00008"], NOW)
        staff.split(session, app.settings.campaigns, big, ["KIL-00005"], NOW, alone=True)
        session.commit()
    for _ in range(2):
        with app.sessions() as session:
            recompute_all(session, app.settings.campaigns, NOW)
            session.commit()
        members = _members(app)
        assert members["KIL-00008"][0] == new_id
        assert "KIL-00005" not in members
        assert members["KIL-00001"][0] == big
        with app.sessions() as session:
            assert session.get(Campaign, big).name == "Bank campaign by Friends"
    with app.sessions() as session:
        size = staff.merge(session, app.settings.campaigns, big, [small], NOW)
        session.commit()
    assert size == 5
    with app.sessions() as session:
        recompute_all(session, app.settings.campaigns, NOW)
        session.commit()
        assert session.get(Campaign, small) is None
        assert {cid for cid, _ in _members(app).values()} == {big, new_id}


def test_confirm_counts_partials_and_a_reread_keeps_the_campaign(app: App, tmp_path: Path) -> None:
    paras = TEMPLATE.split("\n\n")
    half = "\n\n".join([paras[1], paras[3], OWN_END])
    import_all(app, tmp_path / "mail", [*CAMPAIGN_MAIL[:2], ("ivy@gmail.com", half)])
    assert _members(app)["KIL-00003"][1] == "partial"
    with app.sessions() as session:
        assert store.honest_counts(session).unconfirmed_partial == 1
        campaign_id = staff.list_campaigns(session)[0].id
        assert staff.confirm(session, campaign_id, NOW) == 3
        session.commit()
        counts = store.honest_counts(session)
        assert (counts.campaign_copies, counts.unique) == (3, 1)
    with app.pipeline(acks=False) as pipeline:
        with app.sessions() as session:
            ids = [repo.get_by_reference(session, "KIL-00002").id]
        pipeline.read(ids)
    assert _members(app)["KIL-00002"] == (campaign_id, "copy")


def test_unknown_campaign_is_a_clear_error(app: App) -> None:
    with app.sessions() as session, pytest.raises(NotFound, match="no campaign has the id 99"):
        staff.confirm(session, 99, NOW)


def test_a_large_campaign_keeps_growing_between_regroupings(app: App, tmp_path: Path) -> None:
    """Past 8 members, plain copies join without a regroup; the result is the same."""
    copies = [(f"p{n}@gmail.com", TEMPLATE) for n in range(9)]
    later = [("q@gmail.com", TEMPLATE + "\n\n" + OWN_END), ("r@gmail.com", INDEPENDENT[2])]
    import_all(app, tmp_path / "mail", [*copies, *later])
    members = _members(app)
    assert members["KIL-00010"][1] == "copy_with_additions"
    assert "KIL-00011" not in members and len(members) == 10
    before = members
    with app.sessions() as session:
        recompute_all(session, app.settings.campaigns, NOW)
        session.commit()
    assert _members(app) == before


def test_a_failing_campaign_step_loses_no_reading(
    app: App, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With the band table gone, the cluster stage fails, is recorded with its reason, and
    every reading is still saved."""
    with app.engine.begin() as conn:
        conn.execute(text("DROP TABLE text_bands"))
    import_all(app, tmp_path / "mail", CAMPAIGN_MAIL[:2])
    with app.sessions() as session:
        errors = list(
            session.scalars(select(StageRow.last_error).where(StageRow.stage == "cluster"))
        )
        assert len(errors) == 2 and all("text_bands" in (e or "") for e in errors)
        statuses = {repo.get_by_reference(session, f"KIL-0000{n}").status for n in (1, 2)}
        assert statuses == {"parsed"}
        assert store.honest_counts(session).campaign_copies == 0


def _passage_texts(app: App) -> dict[str, list[str]]:
    """Reference -> the texts of its passages, as the tagging stage left them."""
    with app.sessions() as session:
        found = {}
        for ref in store.references(session, _all_ids(session)).values():
            sub = repo.get_by_reference(session, ref or "")
            found[ref or ""] = [p.text for p, _ in tags.passages_of(session, sub.id)]
    return found


def _all_ids(session: Session) -> list[int]:
    return list(session.scalars(select(Submission.id)))


def test_copies_are_counted_not_tagged_again(db_url: str, tmp_path: Path) -> None:
    """With questions set, a plain campaign copy has no passages of its own, a copy with
    additions has passages from its additions only, and a version that a later one
    replaced loses its passages: the template's answers are tagged once."""
    app = App(make_settings(db_url, questions=True), now=lambda: NOW)
    import_all(app, tmp_path / "mail", CAMPAIGN_MAIL)
    passages = _passage_texts(app)
    assert passages["KIL-00002"] == []  # a plain copy
    assert any("patient capital" in text for text in passages["KIL-00001"])  # the template
    assert passages["KIL-00003"] and all(
        "patient capital" not in text for text in passages["KIL-00003"]
    )
    assert " ".join(passages["KIL-00003"]) == " ".join(OWN_START.rstrip(".").split())
    assert passages["KIL-00004"]  # an independent response is tagged whole
    revised = "Please use this one instead of my first email.\n\n" + INDEPENDENT[0]
    import_all(app, tmp_path / "mail", [("dan@example.net", revised)], start=10)
    passages = _passage_texts(app)
    assert passages["KIL-00004"] == []  # replaced by KIL-00006
    assert passages["KIL-00006"]
    app.close()


def test_a_lone_response_joins_nothing_and_empty_campaigns_go(app: App, tmp_path: Path) -> None:
    """A response with nothing near it is in no campaign; one left empty is removed."""
    with app.sessions() as session:
        store.new_campaign(session, NOW)  # as a staff action could leave one behind
        session.commit()
    import_all(app, tmp_path / "mail", [("dan@example.net", INDEPENDENT[0])])
    assert _members(app) == {}
    with app.sessions() as session:
        assert session.scalars(select(Campaign)).all() == []


def _links(app: App) -> set[tuple[str, str, str]]:
    with app.sessions() as session:
        rows = list(session.execute(select(SubmissionVersion)).scalars())
        refs = store.references(session, [r.earlier_id for r in rows] + [r.later_id for r in rows])
        return {(refs[r.earlier_id] or "", refs[r.later_id] or "", r.reason) for r in rows}


@pytest.mark.parametrize("together", [False, True], ids=["one-by-one", "one-batch"])
def test_versions_linked_as_they_arrive_match_a_recompute(
    app: App, tmp_path: Path, together: bool
) -> None:
    """Each response of an organisation is linked on its own as it arrives (alone, or in
    one poll's batch); the links are exactly those a recompute of the whole finds."""
    org = [
        ("a@northmoor.gov.uk", INDEPENDENT[0]),
        ("b@northmoor.gov.uk", INDEPENDENT[1]),
        ("c@northmoor.gov.uk", INDEPENDENT[0] + "\n\n" + OWN_END),  # repeats a's
        ("a@northmoor.gov.uk", "Please use this one instead.\n\n" + INDEPENDENT[2]),
        ("d@northmoor.gov.uk", INDEPENDENT[3]),
        ("b@northmoor.gov.uk", INDEPENDENT[1] + "\n\n" + OWN_START),  # repeats b's
        ("e@northmoor.gov.uk", "This replaces our earlier response.\n\n" + INDEPENDENT[3]),
    ]
    if together:
        import_all(app, tmp_path / "mail", org)
    for n, mail in enumerate([] if together else org):
        import_all(app, tmp_path / "mail", [mail], start=n)
    arrived = _links(app)
    assert arrived == {
        ("KIL-00001", "KIL-00003", "repeats"),
        ("KIL-00002", "KIL-00006", "repeats"),
        # a's second email says it replaces, but a's first is already replaced by c's
        # and it shares too little with the others to replace theirs
        ("KIL-00005", "KIL-00007", "replaces"),
    }
    with app.sessions() as session:
        recompute_all(session, app.settings.campaigns, NOW)
        session.commit()
    assert _links(app) == arrived


def test_two_campaign_stages_at_once_take_turns(app: App, tmp_path: Path) -> None:
    """GIVEN three versions from one sender, linked, WHEN the campaign stage runs again
    for the newest in one process and for the oldest in another at the same moment
    (the first has written its link and not committed), THEN the second waits for the
    first: no duplicate link fails the stage, and the links are those of one run."""
    import threading

    from intake.stages.cluster import run_many
    from store import work

    base = INDEPENDENT[0] + "\n\n" + OWN_END
    import_all(
        app,
        tmp_path / "mail",
        [
            ("ann@example.net", INDEPENDENT[0]),
            ("ann@example.net", base),  # repeats the first
            ("ann@example.net", base + "\n\n" + OWN_START),  # repeats the second
        ],
    )
    expected = {("KIL-00001", "KIL-00002", "repeats"), ("KIL-00002", "KIL-00003", "repeats")}
    assert _links(app) == expected
    with app.sessions() as session:
        first, _second, newest = sorted(session.scalars(select(Submission.id)))
        work.mark_due(session, [first, newest], ["cluster"], NOW)  # the second stays done
        session.commit()
    written, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def newest_first() -> None:
        try:
            with app.sessions() as session:
                run_many(app, session, [newest])
                session.flush()
                written.set()
                release.wait(30)
                session.commit()
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
            written.set()

    def oldest() -> None:
        try:
            with app.sessions() as session:
                run_many(app, session, [first])
                session.commit()
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    one = threading.Thread(target=newest_first)
    one.start()
    assert written.wait(30)
    two = threading.Thread(target=oldest)
    two.start()
    two.join(1.0)  # it waits for the first to commit
    release.set()
    one.join(30)
    two.join(30)
    assert errors == []
    assert _links(app) == expected
