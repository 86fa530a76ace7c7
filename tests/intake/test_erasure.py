"""Erasure that erases: purge, --anonymise, [retention] and `intake erase --sender`.

Every test searches the whole database afterwards: on SQLite the bytes of the
database file and its write-ahead log, and on both backends every column of every
table, for the people's addresses and sentences. None may be found; a response
that is kept must still be found (so the search itself is shown to work).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import MetaData, create_engine, select

from intake.app import App
from intake.cli import cli
from intake.config import load_settings
from intake.deadline import UK
from intake.scheduler import Worker
from intake.staff.daily import build_digest
from intake.staff.digest import digest_text
from intake.staff.erasure import next_purge_run, retention_forecast
from intake.worker import import_path
from store import repo
from store.models import Ack, AuditEvent, Submission
from tests.conftest import make_settings, write_config

UTC = dt.UTC
NOW = dt.datetime(2018, 7, 30, 12, 0, tzinfo=UTC)

JANE = "jane.doe@example.net"
BOB = "bob.smith@example.net"
CAROL = "carol.jones@example.net"
KEPT = "keep.me@example.net"
JANE_SAYS = "The mobile library stop at Elm Row is unsafe after dark."
JANE_FILE_SAYS = "Our lunch club serves 212 pensioners every Thursday."
JANE_NOTE = "Jane Doe phoned about her response"
BOB_SAYS = "Bob thinks the swimming pool opening hours are too short."
CAROL_SAYS = "Carol says the community bus timetable is impossible to read."
KEPT_SAYS = "Keep this sentence about the allotments on Mill Lane."


def _mail(sender: str, name: str, date: str, body: str, n: int, attachment: str = "") -> bytes:
    head = (
        f"From: {name} <{sender}>\r\nTo: keepitlocal@example.org\r\n"
        f"Subject: Evidence from {name}\r\nDate: {date}\r\nMessage-ID: <m{n}@example.net>\r\n"
        "MIME-Version: 1.0\r\n"
    )
    if not attachment:
        return (head + f"Content-Type: text/plain\r\n\r\n{body}\r\n").encode()
    return (
        head + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        f"--b\r\nContent-Type: text/plain\r\n\r\n{body}\r\n"
        "--b\r\nContent-Type: text/plain\r\n"
        'Content-Disposition: attachment; filename="jane-doe-notes.txt"\r\n\r\n'
        f"{attachment}\r\n--b--\r\n"
    ).encode()


def _bounce(ack_message_id: str) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
        "To: keepitlocal@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Date: Sat, 21 Jul 2018 10:00:00 +0100\r\nMessage-ID: <dsn-1@mx.example.net>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n\r\n'
        f"--r\r\nContent-Type: text/plain\r\n\r\nYour message to {JANE} could not be delivered."
        "\r\n--r\r\nContent-Type: message/delivery-status\r\n\r\n"
        f"Final-Recipient: rfc822; {JANE}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        f"\r\n--r\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {ack_message_id}\r\n"
        f"To: Jane Doe <{JANE}>\r\n\r\n--r--\r\n"
    ).encode()


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    """A config on a fresh database: acknowledgements on (queued, never sent here)."""
    return write_config(
        tmp_path,
        """
[smtp]
host = "127.0.0.1"
port = 9
security = "none"
from = "keepitlocal@example.org"

[retention]
purge_after_days = 14
anonymise = true
""",
        url=db_url,
    )


def _app(config: Path, now: dt.datetime = NOW) -> App:
    return App(load_settings(config, {}), now=lambda: now)


@pytest.fixture
def stocked(config: Path, tmp_path: Path) -> Iterator[Path]:
    """Jane (read, file, pending ack, staff note, a bounce), Bob (never read), Carol
    (failed) before 1 August 2018; a kept response after it."""
    folder = tmp_path / "in"
    folder.mkdir()
    files = {
        f"{JANE}.eml": _mail(
            JANE, "Jane Doe", "Fri, 20 Jul 2018 10:00:00 +0100", JANE_SAYS, 1, JANE_FILE_SAYS
        ),
        "carol.eml": _mail(CAROL, "Carol Jones", "Sat, 21 Jul 2018 10:00:00 +0100", CAROL_SAYS, 3),
        "kept.eml": _mail(KEPT, "Kim Keep", "Mon, 20 Aug 2018 10:00:00 +0100", KEPT_SAYS, 4),
    }
    app = _app(config)
    with app.pipeline() as pipeline:
        for name, raw in files.items():
            (folder / name).write_bytes(raw)
            import_path(pipeline, folder / name)
        pipeline.read_pending()
        with app.sessions() as session:
            jane = repo.get_by_reference(session, "KIL-00001")
            jane.timeliness_override_reason = JANE_NOTE
            repo.audit(session, "set-timeliness", "KIL-00001", f"late -> on_time: {JANE_NOTE}", NOW)
            carol = repo.get_by_reference(session, "KIL-00002")
            repo.save_reading(
                session, carol.id, {"status": "failed", "error": f"could not read {CAROL}"}, []
            )
            ack_id = session.scalar(select(Ack.message_id).where(Ack.submission_id == jane.id))
            session.commit()
        (folder / "bounce.eml").write_bytes(_bounce(str(ack_id)))
        import_path(pipeline, folder / "bounce.eml")
        pipeline.read_pending()
        # Bob's response is stored but never read (as after a crash).
        (folder / "bob.eml").write_bytes(
            _mail(BOB, "Bob Smith", "Sun, 22 Jul 2018 10:00:00 +0100", BOB_SAYS, 2)
        )
        import_path(pipeline, folder / "bob.eml")
    with app.sessions() as session:
        kinds = dict(session.execute(select(Submission.reference, Submission.kind)).all())
        statuses = dict(session.execute(select(Submission.reference, Submission.status)).all())
        acks = dict(session.execute(select(Ack.submission_id, Ack.status)).all())
    assert kinds["KIL-00004"] == "ack_bounce"
    assert statuses == {
        "KIL-00001": "parsed",
        "KIL-00002": "failed",
        "KIL-00003": "parsed",
        "KIL-00004": "parsed",
        "KIL-00005": "received",
    }
    assert "pending" in acks.values()
    app.close()
    yield config


def _run(config: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _everything(config: Path) -> list[str]:
    """Every value of every column of every table, as text (bytes decoded loosely)."""
    url = load_settings(config, {}).database.connect_url
    engine = create_engine(url)
    metadata = MetaData()
    values: list[str] = []
    with engine.connect() as connection:
        metadata.reflect(connection)
        assert "submissions" in metadata.tables and "skipped_parts" in metadata.tables
        for table in metadata.tables.values():
            for row in connection.execute(select(table)):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        values.append(bytes(value).decode("utf-8", "replace"))
                    elif value is not None:
                        values.append(str(value))
    engine.dispose()
    return values


def _files(config: Path) -> bytes:
    """The SQLite database file and its write-ahead log, byte for byte (b"" on PostgreSQL)."""
    url = load_settings(config, {}).database.connect_url
    if not url.startswith("sqlite"):
        return b""
    path = Path(url.removeprefix("sqlite:///"))
    return b"".join(
        p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists()
    )


def _found(config: Path, needles: list[str]) -> set[str]:
    """Which needles occur anywhere in the database (tables, and the files on SQLite)."""
    values = "\n".join(_everything(config)).lower()
    raw = _files(config).lower()
    return {
        needle for needle in needles if needle.lower() in values or needle.lower().encode() in raw
    }


PEOPLE = [JANE, "Jane Doe", BOB, "Bob Smith", CAROL, "Carol Jones"]
SENTENCES = [JANE_SAYS, JANE_FILE_SAYS, JANE_NOTE, BOB_SAYS, CAROL_SAYS]


class TestPurge:
    def test_anonymise_leaves_nothing(self, stocked: Path) -> None:
        """GIVEN read, failed, never-read and bounced mail WHEN purged with --anonymise
        THEN no address, name or sentence is left anywhere, and the kept one is intact."""
        assert _found(stocked, PEOPLE + SENTENCES) == set(PEOPLE + SENTENCES)
        dry = _run(stocked, "purge", "--before", "2018-08-01", "--anonymise", "--dry-run")
        assert "4 submission(s)" in dry and "KIL-00005" in dry
        assert _found(stocked, SENTENCES) == set(SENTENCES)  # a dry run changes nothing
        out = _run(stocked, "purge", "--before", "2018-08-01", "--anonymise", "--yes")
        assert "purge: 4 submission(s)" in out
        assert _found(stocked, PEOPLE + SENTENCES) == set()
        assert _found(stocked, [KEPT, KEPT_SAYS, "Kim Keep"]) == {KEPT, KEPT_SAYS, "Kim Keep"}
        app = _app(stocked)
        with app.sessions() as session:
            statuses = set(
                session.scalars(
                    select(Submission.status).where(Submission.reference != "KIL-00003")
                )
            )
            ack_statuses = set(
                session.scalars(
                    select(Ack.status)
                    .join(Submission, Submission.id == Ack.submission_id)
                    .where(Submission.reference != "KIL-00003")
                )
            )
            (audit,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "purge"))
        app.close()
        assert statuses == {"purged"}
        assert ack_statuses == {"cancelled", "ack_bounced"}  # Carol's pending one, Jane's
        assert audit.reference is None and "4 submission(s)" in audit.detail
        assert "KIL-" not in audit.detail and "@" not in audit.detail

    def test_purge_without_anonymise_keeps_only_who_and_when(self, stocked: Path) -> None:
        """A plain purge erases every text and file but keeps names and addresses."""
        _run(stocked, "purge", "--before", "2018-08-01", "--yes")
        assert _found(stocked, SENTENCES) == set()
        assert {JANE, CAROL} <= _found(stocked, PEOPLE)  # Bob was never read: no address
        assert _found(stocked, [KEPT_SAYS]) == {KEPT_SAYS}
        # Anonymising later finds the purged rows again and takes the rest.
        out = _run(stocked, "purge", "--before", "2018-08-01", "--anonymise", "--yes")
        assert "purge: 3 submission(s)" in out  # Bob's was never read: no name to remove
        assert _found(stocked, PEOPLE + SENTENCES) == set()

    def test_retention_setting_purges_daily(self, stocked: Path) -> None:
        """[retention] purge_after_days = 14 with anonymise erases what is 14 days old."""
        app = _app(stocked, now=dt.datetime(2018, 8, 16, 3, 0, tzinfo=UTC))
        Worker(app).purge()
        app.close()
        assert _found(stocked, PEOPLE + SENTENCES) == set()
        assert _found(stocked, [KEPT_SAYS]) == {KEPT_SAYS}
        app = _app(stocked)
        with app.sessions() as session:
            (audit,) = session.scalars(
                select(AuditEvent).where(AuditEvent.action != "set-timeliness")
            )
        app.close()
        assert audit.action == "retention purge" and "@" not in audit.detail


class TestEraseSender:
    def test_dry_run_then_erase_one_person(self, stocked: Path) -> None:
        """`intake erase --sender` finds Jane's response and the bounce of her ack, and only those."""
        dry = _run(stocked, "erase", "--sender", "Jane.Doe@Example.net", "--dry-run")
        assert "2 submission(s)" in dry and "KIL-00001, KIL-00004" in dry
        assert _found(stocked, [JANE, JANE_SAYS]) == {JANE, JANE_SAYS}
        _run(stocked, "erase", "--sender", JANE, "--yes")
        assert _found(stocked, [JANE, "Jane Doe", JANE_SAYS, JANE_FILE_SAYS, JANE_NOTE]) == set()
        others = [BOB, BOB_SAYS, CAROL, KEPT_SAYS]
        assert _found(stocked, others) == set(others)

    def test_mentions_are_reported_and_erased_on_request(
        self, stocked: Path, tmp_path: Path
    ) -> None:
        """Someone else's response quoting Jane is named, and erased only with --reference."""
        quote = f"I agree with {JANE} about the library bus."
        raw = _mail("dan@example.net", "Dan Ash", "Mon, 23 Jul 2018 10:00:00 +0100", quote, 6)
        (tmp_path / "dan.eml").write_bytes(raw)
        app = _app(stocked)
        with app.pipeline() as pipeline:
            import_path(pipeline, tmp_path / "dan.eml")
            pipeline.read_pending()
        app.close()
        dry = _run(stocked, "erase", "--sender", JANE, "--dry-run")
        assert "mentioned, but not erased, in: KIL-00006" in dry
        _run(stocked, "erase", "--sender", JANE, "--yes")
        assert _found(stocked, [quote, JANE_SAYS]) == {quote}
        out = _run(stocked, "erase", "--sender", JANE, "--reference", "kil-00006", "--yes")
        assert "1 submission(s)" in out
        assert _found(stocked, [quote, JANE, "Dan Ash"]) == set()

    def test_a_mistyped_address_is_a_usage_error(self, stocked: Path) -> None:
        """An address without @ is refused with a one-line hint, no traceback."""
        result = CliRunner().invoke(cli, ["--config", str(stocked), "erase", "--sender", "jane"])
        assert result.exit_code == 2 and "email address" in result.output


class TestRetentionVisible:
    def test_status_says_when_and_how_much(self, stocked: Path) -> None:
        """`intake status` names the next purge and how many submissions it will erase."""
        result = CliRunner().invoke(cli, ["--config", str(stocked), "status"])
        assert re.search(
            r"Retention: next purge \w{3} \d\d \w{3} \d{4} 03:00:00 (GMT|BST) will erase the "
            r"mail, files, texts, names and addresses of 5 submission\(s\)",
            result.output,
        ), result.output

    def test_digest_says_when_and_how_much(self, stocked: Path) -> None:
        """The digest carries the same forecast, in UK time, for the day it covers."""
        end = dt.datetime(2018, 8, 16, 1, 0, tzinfo=UTC)
        app = _app(stocked, now=end)
        with app.sessions() as session:
            text = digest_text(build_digest(session, app.settings, end, None))
        app.close()
        assert (
            "Retention: next purge Thu 16 Aug 2018 03:00:00 BST will erase the mail, files, "
            "texts, names and addresses of 4 submission(s) dated before "
            "Thu 02 Aug 2018 03:00:00 BST (purge_after_days = 14)"
        ) in text

    def test_off_says_so(self, sqlite_url: str) -> None:
        """With purge_after_days = 0 the forecast says nothing is purged automatically."""
        app = App(make_settings(sqlite_url))
        with app.sessions() as session:
            forecast = retention_forecast(session, app.settings.retention, UK, NOW)
        app.close()
        assert forecast.line().startswith("Retention: no automatic purge")

    @pytest.mark.parametrize(
        ("now", "expected"),
        [
            (
                dt.datetime(2018, 7, 27, 1, 59, tzinfo=UTC),
                dt.datetime(2018, 7, 27, 2, 0, tzinfo=UTC),
            ),
            (
                dt.datetime(2018, 7, 27, 2, 0, tzinfo=UTC),
                dt.datetime(2018, 7, 28, 2, 0, tzinfo=UTC),
            ),
            (
                dt.datetime(2018, 12, 1, 2, 59, tzinfo=UTC),
                dt.datetime(2018, 12, 1, 3, 0, tzinfo=UTC),
            ),
            # the night the clocks go back: 03:00 GMT
            (
                dt.datetime(2018, 10, 28, 1, 30, tzinfo=UTC),
                dt.datetime(2018, 10, 28, 3, 0, tzinfo=UTC),
            ),
        ],
    )
    def test_next_run_is_three_in_the_morning_uk_time(
        self, now: dt.datetime, expected: dt.datetime
    ) -> None:
        """The next run is 03:00 UK time, BST or GMT, never the one just passed."""
        assert next_purge_run(now, UK) == expected
