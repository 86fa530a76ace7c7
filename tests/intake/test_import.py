"""``intake import`` takes mail only: .eml, mbox, Maildir and Outlook .msg; the rest is skipped."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from intake.app import App
from intake.cli import cli
from intake.mail.message import FetchedMail
from intake.mail.sources import looks_like_mail, msg_to_eml
from store import work
from store.models import Submission, SubmissionStatus
from tests.conftest import DATA, ROOT, make_settings

DEMO_INBOX = ROOT / "examples" / "inbox"
MSG = DATA / "msg" / "tika_testMSG_att_doc.msg"

NO_INBOX = """
[consultation]
name = "Keep it Local: call for evidence"
deadline = 2018-07-27T23:59:59
reference_prefix = "KIL"

[database]
url = "{url}"
"""

EML = (
    b"From: Ann Example <ann@example.org>\n"
    b"To: evidence@example.org\n"
    b"Subject: My response\n"
    b"Date: Tue, 24 Jul 2018 10:00:00 +0100\n"
    b"Message-ID: <import-1@example.org>\n\n"
    b"More buses, please.\n"
)
MBOX = (
    b"From ann@example.org Tue Jul 24 10:00:00 2018\n"
    + EML.replace(b"import-1", b"mbox-1")
    + b"\nFrom bob@example.org Tue Jul 24 11:00:00 2018\n"
    + EML.replace(b"import-1", b"mbox-2").replace(b"Ann Example <ann", b"Bob <bob")
    + b"\nFrom x@example.org Tue Jul 24 12:00:00 2018\n"
    + b"this one is no email at all\n"
)


def _invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    """A configuration with no inbox at all: a one-off backfill needs none."""
    path = tmp_path / "config.toml"
    path.write_text(NO_INBOX.format(url=db_url))
    return path


class TestWhatIsMail:
    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            (EML, ""),
            (b"", "empty file"),
            (b"# consultation-intake\n\nA README, not mail.\n", "does not start with mail headers"),
            (os.urandom(64).replace(b"\n", b"x") + b"\0", "binary data"),
            (b"Title: notes\nAuthor: me\n\ntext\n", "no From header"),
            (b"From: someone\n\nhello\n", "too few mail headers"),
        ],
    )
    def test_looks_like_mail(self, raw: bytes, reason: str) -> None:
        """Only something that starts with mail headers, including From, counts as mail."""
        found = looks_like_mail(raw)
        assert (reason in found) if reason else found == ""

    def test_msg_becomes_the_message_it_holds(self) -> None:
        """An Outlook .msg turns into RFC 822 bytes with its sender, subject and attachment."""
        raw = msg_to_eml(MSG.read_bytes())
        assert looks_like_mail(raw) == ""
        head = raw.split(b"\n\n", 1)[0]
        assert b"\nFrom: " in b"\n" + head and b"Message-Id:\n" not in head
        assert b".doc" in raw

    def test_damaged_msg_is_refused(self) -> None:
        """Half an Outlook file is not a message."""
        with pytest.raises(ValueError, match="Outlook"):
            msg_to_eml(MSG.read_bytes()[:4096])


class TestImportCommand:
    def test_mixed_folder(self, config: Path, tmp_path: Path) -> None:
        """Mail is stored; a README, random bytes, an empty file are skipped with reasons; exit 1."""
        folder = tmp_path / "backfill"
        (folder / "sub").mkdir(parents=True)
        (folder / "one.eml").write_bytes(EML)
        (folder / "sub" / "outlook.msg").write_bytes(MSG.read_bytes())
        (folder / "archive.mbox").write_bytes(MBOX)
        (folder / "README.md").write_text("# Notes\n\nNot an email.\n")
        (folder / "noise.bin").write_bytes(os.urandom(2048))
        (folder / "empty.eml").write_bytes(b"")
        (folder / ".hidden").write_bytes(b"ignored")
        result = _invoke(config, "import", str(folder))
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        assert "4 new, 0 already stored, 4 skipped" in result.output
        assert f"skipped {folder / 'README.md'}: not an email message" in result.output
        assert f"skipped {folder / 'noise.bin'}: not an email message" in result.output
        assert f"skipped {folder / 'empty.eml'}: empty file" in result.output
        assert f"skipped {folder / 'archive.mbox'} (message 3)" in result.output
        assert ".hidden" not in result.output
        assert "4 file(s) or message(s) skipped" in result.output
        records = [
            json.loads(line) for line in _invoke(config, "list", "--json", "--all-versions").output.splitlines()
        ]
        meta, *subs = records
        assert meta["meta"]["inbox"] is None and len(subs) == 4
        senders = sorted(s["sender_email"] for s in subs)
        assert senders == [
            "ann@example.org",
            "ann@example.org",
            "bob@example.org",
            "nicolas1.23456@free.fr",
        ]
        msg = [s for s in subs if any(a["filename"].endswith(".doc") for a in s["attachments"])]
        assert len(msg) == 1, subs

    def test_only_mail_exits_zero_and_deduplicates(self, config: Path, tmp_path: Path) -> None:
        """A Maildir and an .eml: exit 0; a second run stores nothing again."""
        inbox = tmp_path / "inbox"
        shutil.copytree(DEMO_INBOX, inbox)
        first = _invoke(config, "import", str(inbox))
        assert first.exit_code == 0, first.output
        assert "7 new, 0 already stored, 0 skipped" in first.output
        again = _invoke(config, "import", str(inbox))
        assert again.exit_code == 0 and "0 new, 7 already stored, 0 skipped" in again.output

    def test_poll_without_inbox_says_what_to_add(self, config: Path) -> None:
        """With no inbox configured, poll says to add [imap] or [maildir] (exit 2)."""
        result = _invoke(config, "poll")
        assert result.exit_code == 2 and "no inbox is configured" in result.output


class TestBatches:
    def test_many_messages_are_stored_in_batches_and_all_read(
        self, config: Path, tmp_path: Path
    ) -> None:
        """Twenty messages and a copy of one (several store batches): each is stored once
        and read before the command ends; a second run stores nothing again."""
        folder = tmp_path / "backfill"
        folder.mkdir()
        for number in range(20):
            body = EML.replace(b"import-1", b"batch-%d" % number)
            (folder / f"{number:02d}.eml").write_bytes(body)
        (folder / "03-copy.eml").write_bytes(EML.replace(b"import-1", b"batch-3"))
        first = _invoke(config, "import", str(folder))
        assert first.exit_code == 0, first.output
        assert "20 new, 1 already stored, 0 skipped; read 20, failed 0" in first.output
        listed = _invoke(config, "list", "--json", "--all-versions")
        _meta, *rows = [json.loads(line) for line in listed.output.splitlines()]
        assert len(rows) == 20, rows
        assert {row["status"] for row in rows} == {"parsed"}, rows
        again = _invoke(config, "import", str(folder))
        assert "0 new, 21 already stored, 0 skipped; read 0, failed 0" in again.output

    def test_stored_mail_is_read_while_storing_goes_on(self, db_url: str) -> None:
        """GIVEN the stages running alongside, WHEN a message is stored and the thread
        woken, THEN it is read before storing ends; the final pass reports it."""
        app = App(make_settings(db_url))
        try:
            with app.pipeline(acks=False) as pipeline:
                with pipeline.reading_alongside() as stored:
                    now = dt.datetime(2018, 7, 24, 9, 0, tzinfo=dt.UTC)
                    pipeline.store_sourced([(FetchedMail(raw=EML, fetched_at=now), "file:a")])
                    stored()
                    deadline = time.monotonic() + 60
                    while _status(app) != SubmissionStatus.PARSED:
                        assert time.monotonic() < deadline, "not read while storing went on"
                        time.sleep(0.05)
                report = pipeline.read_pending()
        finally:
            app.close()
        assert (report.read, report.failed) == (1, 0)


    def test_leaving_normally_runs_every_stage_before_the_final_pass(self, db_url: str) -> None:
        """GIVEN messages stored alongside the stage threads and never woken for, WHEN
        the block is left normally, THEN the threads have read them and run every later
        stage already: nothing is due for the final pass, which reports it all."""
        app = App(make_settings(db_url))
        try:
            with app.pipeline(acks=False) as pipeline:
                with pipeline.reading_alongside():
                    now = dt.datetime(2018, 7, 24, 9, 0, tzinfo=dt.UTC)
                    for number in range(3):
                        raw = EML.replace(b"import-1", b"drain-%d" % number)
                        pipeline.store_sourced([(FetchedMail(raw=raw, fetched_at=now), "file:a")])
                with app.sessions() as session:
                    left = work.stage_counts(session)
                report = pipeline.read_pending()
        finally:
            app.close()
        assert left == {stage: {"done": 3} for stage in pipeline.stage_names}, left
        assert (report.read, report.failed) == (3, 0)
        assert report.stages.done == {stage: 3 for stage in pipeline.stage_names}

    def test_an_error_while_storing_stops_the_threads_and_leaves_the_work_due(
        self, db_url: str
    ) -> None:
        """GIVEN a message stored alongside the stage threads, never woken for, WHEN
        storing raises, THEN the error comes through, the threads stop without
        reading it, and the next pass reads it."""
        app = App(make_settings(db_url))
        try:
            with app.pipeline(acks=False) as pipeline:
                with pytest.raises(OSError, match="disk gone"), pipeline.reading_alongside():
                    now = dt.datetime(2018, 7, 24, 9, 0, tzinfo=dt.UTC)
                    pipeline.store_sourced([(FetchedMail(raw=EML, fetched_at=now), "file:a")])
                    raise OSError("disk gone")
                with app.sessions() as session:
                    left = work.stage_counts(session)
                report = pipeline.read_pending()
        finally:
            app.close()
        assert left["read"] == {"due": 1}, left
        assert (report.read, report.failed) == (1, 0)


def _status(app: App) -> str | None:
    with app.sessions() as session:
        return session.scalars(select(Submission.status)).one()
