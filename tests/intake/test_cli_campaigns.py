"""``intake campaigns`` and the campaign parts of list, show, export and status, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from intake.cli import cli
from tests.analysis.test_campaigns import OWN_END, OWN_START, TEMPLATE
from tests.conftest import write_config
from tests.store.test_campaigns import CAMPAIGN_MAIL, write_mail


def run(config: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A consultation whose mail has been imported: one campaign and a revised version."""
    config = write_config(
        tmp_path,
        '\n[campaigns]\nown_text_min_words = 6\npublic_mail_domains = ["example.net"]\n',
    )
    mails = [*CAMPAIGN_MAIL, ("ann@gmail.com", "Please use this one instead.\n\n" + TEMPLATE)]
    paths = [str(write_mail(tmp_path, n, s, b)) for n, (s, b) in enumerate(mails)]
    assert "read 6, failed 0" in run(config, "import", *paths)
    return config


def test_campaigns_lists_counts_template_and_members(config: Path) -> None:
    out = run(config, "campaigns")
    assert out.splitlines()[0] == (
        "Counted: received 6; unique responses 2 (1 independent + 1 campaign text(s)); "
        "campaign copies 4 in 1 campaign(s), 2 with their own text; superseded versions 1"
    )
    assert "| I am writing to respond to the consultation" in out
    assert "KIL-00001" not in out  # superseded by KIL-00006
    assert "KIL-00006" in out and "copy_with_additions" in out
    assert f"own text: {OWN_START[:60]}" in out
    listed = [json.loads(line) for line in run(config, "campaigns", "--json").splitlines()]
    assert len(listed) == 1 and listed[0]["size"] == 4
    roles = {m["reference"]: m["role"] for m in listed[0]["members"]}
    assert roles == {
        "KIL-00002": "template",
        "KIL-00003": "copy_with_additions",
        "KIL-00005": "copy_with_additions",
        "KIL-00006": "copy",
    }


def test_show_export_list_and_status_carry_the_campaign(config: Path) -> None:
    shown = run(config, "show", "KIL-00005")
    assert "Campaign:   1, 4 responses, not yet confirmed; this one is copy with additions" in shown
    assert f"Own text:   {OWN_END.rstrip('.')}" in shown
    old = run(config, "show", "KIL-00001")
    assert "Superseded: by KIL-00006" in old and "+Please use this one instead." in old
    record = json.loads(run(config, "show", "KIL-00006", "--json"))
    assert record["supersedes"] == "KIL-00001" and record["campaign"]["role"] == "copy"
    exported = [json.loads(line) for line in run(config, "export").splitlines()]
    by_ref = {r["reference"]: r for r in exported}
    assert by_ref["KIL-00001"]["superseded_by"] == "KIL-00006"
    assert by_ref["KIL-00004"]["campaign"] is None
    assert set(by_ref["KIL-00003"]["campaign"]) == {
        "id",
        "role",
        "containment",
        "size",
        "additions",
    }
    listing = CliRunner().invoke(cli, ["--config", str(config), "list"])
    assert "KIL-00001" not in listing.stdout and "[campaign 1: template]" in listing.stdout
    assert "superseded versions 1" in listing.stderr
    assert "KIL-00001" in run(config, "list", "--all-versions")
    assert "Counted: received 6; unique responses 2" in run(config, "status", code=1)
    digest = run(config, "digest", "--print")
    assert "Counted:  received 6; unique responses 2" in digest


def test_staff_decisions_from_the_command_line(config: Path) -> None:
    assert "named 'Bank letter'" in run(config, "campaigns", "name", "1", "Bank letter")
    out = run(config, "campaigns", "split", "1", "KIL-00003", "--none")
    assert "to no campaign" in out
    assert "3 members" in run(config, "campaigns", "recompute")
    listed = json.loads(run(config, "campaigns", "--json", "--no-members"))
    assert listed["name"] == "Bank letter" and listed["size"] == 3 and "members" not in listed
    assert "confirmed with 3 responses" in run(config, "campaigns", "confirm", "1")


def test_mistakes_get_one_line(config: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(config), "campaigns", "confirm", "42"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: no campaign has the id 42; see `intake campaigns`"
    result = CliRunner().invoke(
        cli, ["--config", str(config), "campaigns", "split", "1", "KIL-00004"]
    )
    assert result.output.strip() == "Error: KIL-00004 is not in campaign 1"


def test_merge_from_the_command_line(config: Path) -> None:
    """`campaigns merge` puts a split-off campaign's responses back, and a recompute keeps it."""

    def sizes() -> dict[int, int]:
        out = run(config, "campaigns", "--json", "--no-members")
        return {c["id"]: c["size"] for c in map(json.loads, out.splitlines())}

    out = run(config, "campaigns", "split", "1", "KIL-00003", "KIL-00005")
    new_id = int(out.rstrip().rsplit(" ", 1)[-1])
    assert sizes() == {1: 2, new_id: 2}
    assert run(config, "campaigns", "merge", "1", str(new_id)).strip() == (
        "campaign 1 now has 4 responses"
    )
    assert sizes() == {1: 4}
    run(config, "campaigns", "recompute")
    assert sizes() == {1: 4}
