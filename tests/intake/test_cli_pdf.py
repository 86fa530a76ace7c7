"""PDF engine and OCR as staff see them: `intake import`, `show` and the JSONL export."""

from __future__ import annotations

import io
import json
import os
import shutil
from email.message import EmailMessage
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from click.testing import CliRunner
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from intake.cli import cli


def _scanned_page_pdf() -> bytes:
    """Page 1 typed (a text layer), page 2 a picture of typed text (a scan)."""
    picture = io.BytesIO()
    c = canvas.Canvas(picture, pagesize=A4, invariant=1)
    c.setFont("Helvetica", 28)
    c.drawString(60, 760, "Please light the river path.")
    c.showPage()
    c.save()
    image = pdfium.PdfDocument(picture.getvalue())[0].render(scale=200 / 72, grayscale=True)
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=A4, invariant=1)
    c.drawString(72, 760, "We support the proposal for more buses.")
    c.showPage()
    c.drawImage(ImageReader(image.to_pil()), 0, 0, *A4)
    c.showPage()
    c.save()
    return out.getvalue()


def _config(tmp_path: Path, ocr: bool) -> Path:
    (tmp_path / "inbox").mkdir()
    for sub in ("cur", "new", "tmp"):
        (tmp_path / "inbox" / sub).mkdir()
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[consultation]
name = "Call for evidence"
deadline = 2030-01-01
reference_prefix = "KIL"

[database]
url = "sqlite:///{tmp_path / "intake.db"}"

[maildir]
path = "inbox"

[ocr]
enabled = {"true" if ocr else "false"}
languages = "eng+cym"
page_timeout_s = 60

[extraction]
pdf_engine = "auto"
"""
    )
    message = EmailMessage()
    message["From"] = "Resident <resident@example.net>"
    message["To"] = "consultation@example.org"
    message["Subject"] = "My response"
    message["Date"] = "Mon, 02 Mar 2026 10:00:00 +0000"
    message["Message-ID"] = "<scan-1@example.net>"
    message.set_content("My response is attached.")
    message.add_attachment(_scanned_page_pdf(), maintype="application", subtype="pdf",
                           filename="response.pdf")
    (tmp_path / "response.eml").write_bytes(bytes(message))
    return config


def _run(config: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.skipif(shutil.which("tesseract") is None and not os.environ.get("CI"),
                    reason="tesseract-ocr is installed by scripts/system-deps.sh")
def test_import_ocrs_the_scanned_page_and_says_so(tmp_path: Path) -> None:
    """The typed page is read by PDFium, the scanned one by OCR; show and export tell."""
    config = _config(tmp_path, ocr=True)
    assert "read 1, failed 0" in _run(config, "import", str(tmp_path / "response.eml"))
    shown = _run(config, "show", "KIL-00001")
    assert "read by pdfium+tesseract, OCR on page(s) 2]: ok" in shown
    assert "We support the proposal for more buses." in shown
    assert "river path" in shown
    exported = tmp_path / "out.jsonl"
    _run(config, "export", "-o", str(exported))
    (attachment,) = json.loads(exported.read_text())["attachments"]
    assert (attachment["engine"], attachment["ocr_pages"]) == ("pdfium+tesseract", "2")


def test_without_ocr_the_scanned_page_is_named(tmp_path: Path) -> None:
    """With OCR off the typed text is kept and the message names the page needing OCR."""
    config = _config(tmp_path, ocr=False)
    _run(config, "import", str(tmp_path / "response.eml"))
    record = json.loads(_run(config, "show", "KIL-00001", "--json"))
    (attachment,) = record["attachments"]
    assert attachment["engine"] == "pdfium" and attachment["ocr_pages"] is None
    assert "more buses" in attachment["text"]
    assert "(pages without a text layer (need OCR): 2)" in attachment["note"]
