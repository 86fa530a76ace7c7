"""Tagging end to end: import mail, tag, review, evidence packs and exports (both databases)."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

import pytest
from click.testing import CliRunner
from docx import Document

from intake.cli import cli
from tests.conftest import ROOT

COUNCIL = """Northmoor Borough Council response

Question 2: Scale fail

Our ten-year outsourcing contract with a national provider collapsed when the contractor
went into liquidation, and we had to take the service back.

Question 3

Northmoor Community Action, a local charity, runs our befriending service; its volunteers
transformed lives and the evaluation found loneliness fell.
"""


def _questions() -> str:
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    start = text.index("\n[[questions]]") + 1
    return text[start:]


def _mail(path: Path, sender: str, body: str, attachment: tuple[str, str] | None = None) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"] = sender, "keepitlocal@example.org"
    msg["Subject"], msg["Date"] = "Keep it Local response", "Thu, 26 Jul 2018 10:00:00 +0100"
    msg["Message-ID"] = f"<{path.stem}@example.org>"
    msg.set_content(body)
    if attachment:
        msg.add_attachment(attachment[1], filename=attachment[0])
    path.write_bytes(msg.as_bytes())


@pytest.fixture
def config(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[consultation]
name = "Keep it Local"
deadline = 2018-07-27T23:59:59
reference_prefix = "KIL"

[database]
url = "{db_url}"

[maildir]
path = "inbox"

{_questions()}
""",
        encoding="utf-8",
    )
    mails = tmp_path / "mails"
    mails.mkdir()
    _mail(
        mails / "1.eml",
        "Policy <policy@northmoor.gov.uk>",
        "Please find our response attached.",
        ("response.txt", COUNCIL),
    )
    _mail(
        mails / "2.eml",
        "Peter <pwalsh62@gmail.com>",
        "Dear team,\n\nThe council outsourced the leisure centres and the company handed the "
        "contract back early after cutting hours.\n\nThanks, Peter",
    )
    run(path, "import", str(mails / "1.eml"), str(mails / "2.eml"))
    return path


def run(config: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


class TestTagging:
    def test_read_tags_and_staff_review_survives_retag(self, config: Path) -> None:
        """Reading tags passages; a rejection and a type correction survive `retag --all`."""
        shown = run(config, "tag", "KIL-00001")
        assert "KIL-00001: local_authority (auto)" in shown
        assert "[2] response.txt: b (auto" in shown and "[3] response.txt: c (auto" in shown
        assert "heading names the question" in shown or "keywords:" in shown
        run(config, "tag", "KIL-00001", "--reject", "2:b", "--add", "1:d", "--by", "ann")
        run(config, "tag", "KIL-00002", "--type", "community_organisation", "--by", "ann")
        run(config, "retag", "--all")
        shown = run(config, "tag", "KIL-00001")
        assert "[2] response.txt: b REJECTED (staff" in shown
        assert "[1] body: d (staff)" in shown
        assert "KIL-00002: community_organisation (staff)" in run(config, "tag", "KIL-00002")

    def test_bad_decision_is_one_line(self, config: Path) -> None:
        """An unknown question key is a usage error that lists the keys."""
        out = run(config, "tag", "KIL-00001", "--add", "1:z", code=2)
        assert "no question 'z'" in out and "a, b, c, d" in out

    def test_evidence_packs_quote_word_for_word(self, config: Path, tmp_path: Path) -> None:
        """md, html and docx packs hold each tagged passage exactly, grouped by type."""
        passage = (
            "Our ten-year outsourcing contract with a national provider collapsed when the "
            "contractor went into liquidation, and we had to take the service back."
        )
        md = tmp_path / "b.md"
        run(config, "evidence", "--question", "b", "--format", "md", "-o", str(md))
        text = md.read_text(encoding="utf-8")
        assert "2 response(s)" in text and "Local authorities: 1; Individuals: 1" in text
        assert passage in " ".join(text.replace("> ", "").split())
        assert text.index("## Local authorities") < text.index("## Individuals")
        page = tmp_path / "b.html"
        run(config, "evidence", "--question", "b", "--format", "html", "-o", str(page))
        assert "<h2>Local authorities (1)</h2>" in page.read_text(encoding="utf-8")
        word = tmp_path / "b.docx"
        run(config, "evidence", "--question", "b", "--format", "docx", "-o", str(word))
        paragraphs = [p.text for p in Document(str(word)).paragraphs]
        assert any(" ".join(p.split()) == passage for p in paragraphs)
        assert "no such question" in run(
            config, "evidence", "--question", "x", "-o", str(md), code=2
        )

    def test_exports_and_status(self, config: Path, tmp_path: Path) -> None:
        """JSONL gains type, organisation and questions; the Consult folder has its layout."""
        out = tmp_path / "all.jsonl"
        run(config, "export", "-o", str(out))
        first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
        assert first["respondent_type"] == "local_authority"
        assert first["organisation"] == "Northmoor Borough Council"
        keys = [q["key"] for q in first["questions"]]
        assert "b" in keys and "c" in keys
        b = next(q for q in first["questions"] if q["key"] == "b")
        assert b["passages"][0]["where"] == "response.txt" and b["passages"][0]["source"] == "auto"
        folder = tmp_path / "consult"
        run(config, "export", "--format", "consult", "-o", str(folder))
        question = json.loads((folder / "inputs/question_part_2/question.json").read_text())
        assert question["question_number"] == 2 and question["has_free_text"] is True
        answers = [
            json.loads(line)
            for line in (folder / "inputs/question_part_2/responses.jsonl").read_text().splitlines()
        ]
        assert {frozenset(a) for a in answers} == {frozenset({"themefinder_id", "text"})}
        assert len(answers) == 2
        people = (folder / "inputs/respondents.jsonl").read_text().splitlines()
        assert json.loads(people[0])["demographic_data"]["respondent_type"] == ["local_authority"]
        status = run(config, "status", code=1)  # never polled: unhealthy, but counts shown
        assert "Responses per question: a (Trends shaping public services)" in status
        assert "local_authority 1" in status and "individual 1" in status
        digest = run(config, "digest", "--print")
        assert "Per question: a (Trends shaping public services)" in digest
        assert "b (Scale fail: large outsourcing contracts) 2" in digest
        assert "Per respondent type: individual 1, local_authority 1" in digest


def test_tagging_failure_leaves_the_reading_saved(tmp_path: Path, db_url: str) -> None:
    """GIVEN model_path names a folder with no model; WHEN mail is read; THEN the reading is
    saved, nothing is tagged, and `intake retag` says in one line what is wrong."""
    (tmp_path / "empty-model").mkdir()
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[consultation]
name = "Keep it Local"
deadline = 2018-07-27T23:59:59
reference_prefix = "KIL"

[database]
url = "{db_url}"

[maildir]
path = "inbox"

{_questions()}
""".replace("# model_path = ", "model_path = ").replace('"models/potion-base-8M"', '"empty-model"'),
        encoding="utf-8",
    )
    mail = tmp_path / "1.eml"
    _mail(mail, "Peter <pwalsh62@gmail.com>", "The outsourcing contract collapsed.")
    assert "read 1, failed 0" in run(path, "import", str(mail))
    assert "not tagged yet" in run(path, "tag", "KIL-00001")
    out = run(path, "retag", "--all", code=1)
    assert "not a model2vec model folder" in out and "Traceback" not in out
