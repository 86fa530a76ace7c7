"""A stage run for a whole claimed batch at once leaves exactly what one at a time does.

Stages may give the runner a ``run_many`` (one query for a batch instead of one per
submission). The promise is that the database ends the same, to the last row, as
running ``run`` for each submission in turn. The mail here covers what the stages
tell apart: campaign copies (plain and with additions), an organisation's revised
versions, a council, an out-of-office reply, every sample email of the test data
and responses read a second time, with staff decisions on their tags and respondent.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select, text

from intake.app import App
from intake.stages import STAGES
from intake.worker import import_path
from store import campaigns as campaign_store
from store import tags
from store.models import Base, Submission
from tests.analysis.test_campaigns import INDEPENDENT, OWN_END, OWN_START, TEMPLATE
from tests.conftest import fresh_database, make_settings
from tests.store.test_campaigns import CAMPAIGN_MAIL, NOW, write_mail

DATA = Path(__file__).resolve().parents[1] / "data" / "eml"

MAIL = [
    *CAMPAIGN_MAIL,
    ("a@northmoor.gov.uk", INDEPENDENT[0]),
    ("b@northmoor.gov.uk", INDEPENDENT[1]),
    ("c@northmoor.gov.uk", INDEPENDENT[0] + "\n\n" + OWN_END),
    ("a@northmoor.gov.uk", "Please use this one instead.\n\n" + INDEPENDENT[2]),
    ("planning@northmoor.gov.uk", "Northmoor District Council\n\n" + INDEPENDENT[3]),
    ("b@northmoor.gov.uk", INDEPENDENT[1] + "\n\n" + OWN_START),
    ("fay@gmail.com", "I am out of the office until Monday. Automatic reply."),
    ("gus@gmail.com", INDEPENDENT[2] + "\n\nRegards, Gus"),
]

# The cluster stage's cases: a copy in the same batch as a revised version from the
# same sender (in another case of the address), versions that repeat, texts too short
# to have band keys, identical short texts, an empty body, a near-copy of an
# independent response, a copy in between, and a revision with nothing else near it.
CLUSTER_MAIL = [
    ("ivy@gmail.com", INDEPENDENT[3]),
    ("Ivy@Gmail.com", "Please use this one instead.\n\n" + TEMPLATE),
    ("jo@gmail.com", TEMPLATE + "\n\n" + OWN_END),
    ("kim@gmail.com", "Short reply."),
    ("lou@gmail.com", "Short reply."),
    ("jo@gmail.com", TEMPLATE + "\n\n" + OWN_END + " And the ferry too."),
    ("max@gmail.com", ""),
    ("ned@hotmail.com", INDEPENDENT[1] + "\n\n" + OWN_START),
    ("ola@westfield.org.uk", TEMPLATE),
    ("pat@westfield.org.uk", INDEPENDENT[1] + " Thank you."),
    ("ron@gmail.com", "The ferry timetable should be agreed with island councils every year."),
    (
        "RON@gmail.com",
        "Please use this one instead. Harbour dues for fishing boats are too high "
        "and the slipway at the pier has been broken since the storms last winter.",
    ),
]

# Who claimed a row is a fresh random holder in each run; nothing else may differ.
_RANDOM = {"claimed_by"}


def _snapshot(app: App) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (and the search index), sorted, holders left out."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with app.sessions() as session:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if c.name not in _RANDOM]
            found = session.execute(select(*columns)).all()
            rows[table.name] = sorted(tuple(map(repr, row)) for row in found)
        postgres = app.engine.dialect.name == "postgresql"
        if "search_index" in inspect(session.connection()).get_table_names():
            key = "id" if postgres else "rowid"
            body = "document::text" if postgres else "body"
            found = session.execute(
                text(f"SELECT {key}, part, subject, sender, {body} FROM search_index")
            ).all()
            rows["search_index"] = sorted(tuple(map(repr, row)) for row in found)
    return rows


def _decide(app: App, ids: list[int]) -> None:
    """Staff decisions on tagged responses: a rejection, an addition, a corrected type
    and organisation (a re-run of the tag stage keeps every one)."""
    with app.sessions() as session:
        decided = 0
        for n, submission_id in enumerate(ids):
            found = tags.passages_of(session, submission_id)
            tagged = [(p.seq, t.question_key) for p, ts in found for t in ts]
            if not tagged:
                continue
            seq, key = tagged[0]
            tags.set_tag(session, submission_id, seq, key, tags.REJECTED, "ann", NOW)
            other = "d" if key != "d" else "c"
            tags.set_tag(session, submission_id, found[-1][0].seq, other, tags.TAGGED, "ann", NOW)
            if n % 2:
                tags.set_respondent(session, submission_id, NOW, "ann", organisation="Ours")
            else:
                tags.set_respondent(session, submission_id, NOW, "ann", kind="charity")
            decided += 1
        session.commit()
    assert decided >= 2, "the test mail should give tagged passages to decide on"


def _run(db_url: str, folder: Path) -> dict[str, list[tuple[Any, ...]]]:
    # Batches smaller than the mail: some of it arrives in each of several batches.
    settings = make_settings(db_url, questions=True, extra="[stages]\nbatch = 16\n")
    app = App(settings, now=lambda: NOW)
    folder.mkdir(exist_ok=True)  # the same files each run: their paths are stored
    with app.pipeline(acks=False) as pipeline:
        for n, (sender, body) in enumerate(MAIL):
            import_path(pipeline, write_mail(folder, n, sender, body))
        for sample in sorted(DATA.glob("*.eml")):
            import_path(pipeline, sample)
        for n, (sender, body) in enumerate(CLUSTER_MAIL, start=60):
            import_path(pipeline, write_mail(folder, n, sender, body))
        assert pipeline.read_pending().failed == 0
        _decide(app, [1, 11, 25])
        # Read again, with a late-arriving copy: every stage runs a second time (and
        # the staff decisions above stand).
        pipeline.read([1, 4, 7, 11, 25])
        import_path(pipeline, write_mail(folder, 90, "hal@gmail.com", CAMPAIGN_MAIL[0][1]))
        assert pipeline.read_pending().failed == 0
        # Staff pin an independent response into the first campaign and say a copy is
        # none; read again with them, next to a copy and a new copy arriving.
        with app.sessions() as session:
            campaign = campaign_store.memberships(session, [1])[1]
            campaign_store.pin(session, [13], campaign, NOW)
            campaign_store.pin(session, [2], None, NOW)
            session.commit()
        pipeline.read([2, 3, 13])
        import_path(pipeline, write_mail(folder, 91, "uma@gmail.com", CAMPAIGN_MAIL[2][1]))
        assert pipeline.read_pending().failed == 0
        # A short reply with nothing near it, pinned too: only its pin brings it in.
        with app.sessions() as session:
            kim = session.scalar(
                select(Submission.id).where(Submission.sender_email == "kim@gmail.com")
            )
            assert kim is not None
            campaign_store.pin(session, [kim], campaign, NOW)
            session.commit()
        pipeline.read([kim])
    snapshot = _snapshot(app)
    app.close()
    return snapshot


def test_batched_stages_leave_what_one_at_a_time_leaves(
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    batched = [name for name, stage in STAGES.items() if stage.run_many is not None]
    assert batched, "no stage runs a batch at once: nothing to compare"
    with caplog.at_level(logging.INFO, logger="intake.stages.runner"):
        together = _run(db_url, tmp_path / "mail")
    # A batch that raised would be run one at a time: nothing batched compared.
    assert "a batch failed" not in caplog.text
    for name in batched:
        monkeypatch.setitem(STAGES, name, dataclasses.replace(STAGES[name], run_many=None))
    kind = "postgres" if db_url.startswith("postgresql") else "sqlite"
    with fresh_database(kind, tmp_path / "apart.db") as other:
        apart = _run(other, tmp_path / "mail")
    assert together.keys() == apart.keys()
    for table in together:
        assert together[table] == apart[table], table
