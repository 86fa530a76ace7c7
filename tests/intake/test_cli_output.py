"""What the commands print and write: CSV for Excel, JSONL errors, show --save, wording."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import io
import json
import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from intake.cli import cli
from intake.cli.root import _counting
from intake.mail.originals import safe_filename, save_originals
from intake.staff.daily import describe
from store.models import DigestRun
from tests.conftest import ROOT, write_config

DEMO_INBOX = ROOT / "examples" / "inbox"


@pytest.fixture
def demo(tmp_path: Path, db_url: str) -> Path:
    """The demo inbox polled into a fresh database (SQLite and PostgreSQL)."""
    shutil.copytree(DEMO_INBOX, tmp_path / "inbox")
    config = write_config(tmp_path, url=db_url)
    assert _run(config, "poll").exit_code == 0
    return config


def _run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args])


class TestExport:
    def test_csv_file_has_a_byte_order_mark(self, demo: Path, tmp_path: Path) -> None:
        """A CSV file starts with a BOM, so Excel keeps accents and curly quotes."""
        out = tmp_path / "export.csv"
        result = _run(demo, "export", "--format", "csv", "-o", str(out))
        assert result.exit_code == 0, result.output
        data = out.read_bytes()
        assert data.startswith(b"\xef\xbb\xbfreference,")
        assert "wrote 6 submission(s)" in result.output

    def test_stdout_csv_only_with_excel(self, demo: Path) -> None:
        """On stdout the BOM is added only when asked for with --excel."""
        plain = _run(demo, "export", "--format", "csv").output
        assert plain.startswith("reference,")
        excel = _run(demo, "export", "--format", "csv", "--excel").output
        assert excel.startswith("\ufeffreference,")
        assert _run(demo, "export", "--excel").exit_code == 2

    def test_jsonl_error_only_for_errors(self, demo: Path) -> None:
        """An attachment read well has no error; its reading's summary is a note."""
        records = [json.loads(line) for line in _run(demo, "export").output.splitlines()]
        attachments = [a for r in records for a in r["attachments"]]
        ok = [a for a in attachments if a["parse_status"] == "ok"]
        bad = [a for a in attachments if a["parse_status"] not in ("ok", "empty")]
        assert ok and all(a["error"] is None for a in ok)
        assert any(a["note"] and "Extracted" in a["note"] for a in ok)
        assert bad and all(a["error"] for a in bad)

    def test_progress_bar_ends_at_the_total(self) -> None:
        """The export's progress bar reaches its length, not the last multiple of 100."""
        with click.progressbar(length=257, file=io.StringIO()) as bar:
            assert len(list(_counting(iter([{}] * 257), bar))) == 257
            assert bar.pos == 257


class TestShow:
    def test_save_writes_the_original_and_attachments(self, demo: Path, tmp_path: Path) -> None:
        """show --save writes the message exactly as received and each attachment."""
        target = tmp_path / "originals"
        result = _run(demo, "show", "KIL-00001", "--save", str(target))
        assert result.exit_code == 0, result.output
        eml = target / "KIL-00001.eml"
        raw = eml.read_bytes()
        assert raw in [p.read_bytes() for p in (tmp_path / "inbox" / "new").iterdir()]
        message = email.message_from_bytes(raw, policy=email.policy.default)
        names = [part.get_filename() for part in message.iter_attachments()]
        assert names and all((target / name).is_file() for name in names)
        for part in message.iter_attachments():
            assert (target / part.get_filename()).read_bytes() == part.get_content()
        again = _run(demo, "show", "KIL-00001", "--save", str(target))
        assert again.exit_code == 0 and (target / "KIL-00001 (2).eml").exists()

    def test_hostile_names_stay_inside(self, tmp_path: Path) -> None:
        """Attachment names cannot leave the folder, hide, or overwrite each other."""
        raw = (
            b"From: a@example.org\nSubject: x\nMIME-Version: 1.0\n"
            b'Content-Type: multipart/mixed; boundary="b"\n\n'
            b"--b\nContent-Type: text/plain\n\nbody\n"
            b"--b\nContent-Type: application/pdf\nContent-Disposition: attachment; "
            b'filename="../../etc/passwd"\n\nA\n'
            b"--b\nContent-Type: application/pdf\nContent-Disposition: attachment; "
            b'filename="passwd"\n\nB\n'
            b"--b\nContent-Type: application/pdf\nContent-Disposition: attachment; "
            b'filename="..."\n\nC\n--b--\n'
        )
        written = save_originals("KIL-00009", raw, tmp_path / "out")
        assert [p.name for p in written] == [
            "KIL-00009.eml",
            "passwd",
            "passwd (2)",
            "attachment-5",
        ]
        assert all(p.parent == tmp_path / "out" for p in written)
        assert safe_filename("C:\\Users\\x\\.bashrc", "f") == "bashrc"
        assert safe_filename("a\x00b:c.pdf", "f") == "a_b_c.pdf"


class TestSetTimeliness:
    def test_reason_required_and_who_recorded(self, demo: Path) -> None:
        """An empty reason is refused; the change records who made it."""
        empty = _run(demo, "set-timeliness", "KIL-00005", "on_time", "--reason", "  ")
        assert empty.exit_code == 2 and "--reason" in empty.output
        done = _run(
            demo,
            "set-timeliness",
            "KIL-00005",
            "on_time",
            "--reason",
            "posted in time",
            "--by",
            "jo",
        )
        assert done.exit_code == 0 and "(by jo)" in done.output
        shown = _run(demo, "show", "KIL-00005").output
        assert "set by staff: posted in time (by jo)" in shown

    def test_default_is_the_login_name(self, demo: Path) -> None:
        """Without --by the login name is recorded."""
        import getpass

        done = _run(demo, "set-timeliness", "KIL-00005", "late", "--reason", "checked the stamp")
        assert done.exit_code == 0 and f"(by {getpass.getuser()})" in done.output


class TestWording:
    def test_status_says_why_it_is_unhealthy(self, tmp_path: Path) -> None:
        """A database that was never polled: status says to poll, not 'see the errors above'."""
        shutil.copytree(DEMO_INBOX, tmp_path / "inbox")
        config = tmp_path / "config.toml"
        config.write_text(
            '[consultation]\nname = "K"\ndeadline = 2018-07-27\nreference_prefix = "KIL"\n'
            '[maildir]\npath = "inbox"\n'
        )
        assert _run(config, "db", "upgrade").exit_code == 0
        result = _run(config, "status")
        assert result.exit_code == 1
        assert "UNHEALTHY: no poll has succeeded yet" in result.output
        assert "above" not in result.output
        assert f"Database: SQLite file {tmp_path / 'intake.db'}" in result.output

    def test_digest_description_without_a_start(self) -> None:
        """The first digest covers 'everything up to' its end, not 'the beginning to'."""
        end = dt.datetime(2018, 7, 28, 7, 0, tzinfo=dt.UTC)
        run = DigestRun(period_start=None, period_end=end, status="sent")
        assert describe(run) == "digest for everything up to Sat 28 Jul 2018 08:00:00 BST: sent"


def test_worker_says_one_line_at_start(tmp_path: Path) -> None:
    """The worker starts with one line naming its inbox, interval and database; SIGTERM stops it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    shutil.copytree(DEMO_INBOX, tmp_path / "inbox")
    config = tmp_path / "config.toml"
    config.write_text(
        '[consultation]\nname = "K"\ndeadline = 2018-07-27\nreference_prefix = "KIL"\n'
        '[maildir]\npath = "inbox"\n[schedule]\npoll_every_minutes = 5\n'
    )
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "intake", "--config", str(config), "worker"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
    try:
        deadline = time.monotonic() + 60
        while "SIGTERM stops" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = [line for line in log.read_text().splitlines() if line.startswith("intake worker:")]
    assert lines == [
        f"intake worker: polling file:{tmp_path / 'inbox'} every 5 minute(s) into the "
        f"SQLite file {tmp_path / 'intake.db'}; acknowledgements off. Ctrl-C or SIGTERM stops."
    ]


def _on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``intake`` with stdout and stderr on a real pseudo-terminal; return code and text."""
    import os
    import pty
    import subprocess
    import sys

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "intake", *args],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=dict(os.environ, PYTHONPATH=str(ROOT), TERM="dumb", LESS="FRX"),
        cwd=cwd,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closes when the process ends
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return proc.wait(timeout=120), b"".join(chunks).decode(errors="replace")


def test_poll_and_import_show_progress_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal, poll shows a running count and import a bar with its counts."""
    shutil.copytree(DEMO_INBOX, tmp_path / "inbox")
    config = tmp_path / "config.toml"
    config.write_text(
        '[consultation]\nname = "K"\ndeadline = 2018-07-27\nreference_prefix = "KIL"\n'
        '[maildir]\npath = "inbox"\n'
    )
    code, out = _on_a_terminal(["--config", str(config), "poll"], tmp_path)
    assert code == 0, out
    assert "Polling file:" in out and "7 message(s) stored" in out
    code, out = _on_a_terminal(
        ["--config", str(config), "import", str(tmp_path / "inbox")], tmp_path
    )
    assert code == 0, out
    assert "Importing" in out and "7/7" in out and "0 new, 7 already stored, 0 skipped" in out
