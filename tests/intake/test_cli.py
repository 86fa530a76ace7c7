"""The command line, end to end on SQLite with the demo inbox (a real Maildir)."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from intake.cli import cli
from tests.conftest import ROOT, write_config

DEMO_INBOX = ROOT / "examples" / "inbox"


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found.extend(_commands(command, (*prefix, name)))
    return found


@pytest.mark.parametrize("path", _commands(cli), ids=" ".join)
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    """Each command explains itself with --help (without a config file)."""
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and len(result.output.splitlines()) >= 4


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A config for a copy of the demo inbox and a fresh SQLite file."""
    inbox = tmp_path / "inbox"
    shutil.copytree(DEMO_INBOX, inbox)
    return write_config(tmp_path)


def run(config: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


class TestDemoFlow:
    def test_poll_list_show(self, demo: Path) -> None:
        """Poll stores the seven demo messages once; list and show speak UK time."""
        out = run(demo, "poll")
        assert "7 new" in out and "acknowledgements are off" in out
        assert "0 new, 7 already stored" in run(demo, "poll")
        listing = run(demo, "list")
        assert listing.count("KIL-000") == 6  # KIL-00007 is an out-of-office reply
        assert "KIL-00007" not in listing
        header, *rows = listing.splitlines()
        assert header.split() == [
            "REFERENCE",
            "RECEIVED",
            "(UK)",
            "STATUS",
            "FROM",
            "FILES",
            "SUBJECT",
        ]
        received = [row[12:40] for row in rows]  # oldest first, by the time received
        assert rows[0].startswith("KIL-00001") and rows[-1].startswith("KIL-00005")
        assert received[-1] == "Sat 28 Jul 2018 08:05:00 BST"
        assert len(set(received)) == 6
        assert "Sat 28 Jul 2018 08:05:00 BST  late" in listing
        late = run(demo, "list", "--late")
        assert late.count("KIL-000") == 1 and "northtown" in late
        failed = run(demo, "list", "--failed")
        assert failed.count("KIL-000") == 1 and "2 unread" in failed
        shown = run(demo, "show", "kil-00001")
        assert "Anytown Borough Council" in shown and "more buses" in shown
        assert "Received:   Tue 24 Jul 2018 14:02:11 BST (from received_header)" in shown
        assert "bytes, read by pdfium]: ok" in shown

    def test_export_jsonl_and_csv(self, demo: Path, tmp_path: Path) -> None:
        """The JSONL export carries every field analysts rely on, with the attachments' text."""
        run(demo, "poll")
        out = tmp_path / "export.jsonl"
        run(demo, "export", "--format", "jsonl", "-o", str(out))
        records = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(records) == 6
        first = records[0]
        for key in (
            "reference",
            "message_id",
            "sender_email",
            "sender_name",
            "subject",
            "received_at",
            "received_at_source",
            "sent_at",
            "timeliness",
            "status",
            "body_text",
            "attachments",
            "ack_status",
        ):
            assert key in first, key
        assert first["received_at"] == "2018-07-24T13:02:11Z"
        (att,) = first["attachments"]
        assert set(att) >= {
            "filename",
            "content_type",
            "detected_type",
            "size",
            "sha256",
            "parse_status",
            "error",
            "text",
        }
        assert att["parse_status"] == "ok" and "more buses" in att["text"]
        assert (att["engine"], att["ocr_pages"]) == ("pdfium", None)
        rows = list(csv.DictReader(io.StringIO(run(demo, "export", "--format", "csv"))))
        assert len(rows) == 6 and rows[0]["reference"] == "KIL-00001"

    def test_json_list_and_show(self, demo: Path) -> None:
        """--json gives machine-readable output."""
        run(demo, "poll")
        meta, *lines = run(demo, "list", "--json").splitlines()
        assert len(lines) == 6 and "body_text" not in json.loads(lines[0])
        assert json.loads(meta)["meta"] == {
            "config": str(demo.resolve()),
            "database": f"SQLite file {demo.parent / 'intake.db'}",
            "inbox": f"file:{demo.parent / 'inbox'}",
        }
        assert (
            json.loads(run(demo, "show", "KIL-00002", "--json"))["reply_to"]
            == "policy@riverside-trust.org.uk"
        )

    def test_set_timeliness_survives_reparse(self, demo: Path) -> None:
        """A staff override is recorded, shown, and kept when the message is read again."""
        run(demo, "poll")
        run(
            demo, "set-timeliness", "KIL-00005", "on_time", "--reason", "posted before the deadline"
        )
        run(demo, "reparse", "KIL-00005")
        shown = run(demo, "show", "KIL-00005")
        assert "on_time (set by staff: posted before the deadline (by " in shown

    def test_import_deduplicates(self, demo: Path, tmp_path: Path) -> None:
        """Importing the same mail again (a Maildir, then one .eml) stores nothing twice."""
        run(demo, "poll")
        assert "0 new, 7 already stored" in run(demo, "import", str(tmp_path / "inbox"))
        one = sorted(
            p for p in (tmp_path / "inbox" / "new").iterdir() if not p.name.startswith(".")
        )[0]
        eml = tmp_path / "one.eml"
        eml.write_bytes(one.read_bytes())
        assert "0 new, 1 already stored" in run(demo, "import", str(eml))

    def test_reparse_dry_run_and_counts(self, demo: Path) -> None:
        """reparse --failed --dry-run reports what it would do and changes nothing."""
        run(demo, "poll")
        out = run(demo, "reparse", "--failed", "--dry-run")
        assert "1 submission(s) to re-read" in out and "encrypted 1" in out and "needs_ocr 1" in out
        out = run(demo, "reparse", "--failed")
        assert "attachments after: encrypted 1, needs_ocr 1" in out

    def test_reparse_turns_fixed_failures_ok(self, demo: Path) -> None:
        """Attachments not read under a tight limit are read by reparse once the limit is fixed."""
        text = demo.read_text()
        demo.write_text(text + "\n[limits]\nmax_attachments = 0\n")
        run(demo, "poll")
        assert "1 file(s), 1 unread" in run(demo, "list")
        demo.write_text(text)
        out = run(demo, "reparse", "--failed")
        assert "too_large" in out.splitlines()[0]
        assert "attachments after: encrypted 1, needs_ocr 1, ok 4" in out
        assert run(demo, "list", "--failed").count("KIL-") == 1

    def test_status_and_digest_print(self, demo: Path) -> None:
        """status exits 0 after a good poll, and the digest prints what came in."""
        run(demo, "status", code=1)  # never polled: a monitor must see that
        run(demo, "poll")
        out = run(demo, "status")
        assert "Submissions: 6 (on time 5, late 1)" in out and "closed" in out
        digest = run(demo, "digest", "--print")
        assert "KIL-00006" in digest and "Needs attention" in digest
        assert "KIL-00007" not in digest  # the out-of-office reply is no response

    def test_acks_when_off(self, demo: Path) -> None:
        """acks says plainly that acknowledgements are off."""
        run(demo, "poll")
        result = CliRunner().invoke(cli, ["--config", str(demo), "acks"])
        assert "acknowledgements are off" in result.output


class TestErrors:
    def test_config_error_names_the_key(self, demo: Path) -> None:
        """A bad key is a usage error (exit 2) that names it."""
        demo.write_text(demo.read_text().replace("reference_prefix", "reference_prefx"))
        result = CliRunner().invoke(cli, ["--config", str(demo), "list"])
        assert result.exit_code == 2 and "consultation.reference_prefx" in result.output

    def test_unknown_reference(self, demo: Path) -> None:
        """An unknown reference says how to find the right one."""
        run(demo, "poll")
        result = CliRunner().invoke(cli, ["--config", str(demo), "show", "KIL-99999"])
        assert result.exit_code == 1 and "intake list" in result.output

    def test_missing_config(self, tmp_path: Path) -> None:
        """No config file: the error points at the example."""
        result = CliRunner().invoke(cli, ["--config", str(tmp_path / "none.toml"), "list"])
        assert result.exit_code == 2 and "config.example.toml" in result.output
