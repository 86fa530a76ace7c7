"""The PDF engines: choice and fallback, split reading across workers, page-by-page OCR."""

from __future__ import annotations

import io
import os
import shutil

import pypdfium2 as pdfium
import pytest
from parsers_testkit import DOCS, load_generator
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from parsers import ExtractionPool, ExtractJob, Limits, ParseStatus, extract
from parsers.pdflayout import PageLine, join_hyphens, order_lines, remove_running

SCANNED_SENTENCE = "The bus station needs a shelter"
DIGITAL_SENTENCE = "This page was typed in a word processor."


def _text_pdf(lines: list[str], size: float = 28) -> bytes:
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=A4, invariant=1)
    c.setFont("Helvetica", size)
    for number, line in enumerate(lines):
        c.drawString(60, 760 - number * size * 1.6, line)
    c.showPage()
    c.save()
    return buffer.getvalue()


def _scan_of(lines: list[str]) -> object:
    """A picture of a page of text, as a scanner makes it (rendered by PDFium)."""
    page = pdfium.PdfDocument(_text_pdf(lines))[0]
    return page.render(scale=200 / 72, grayscale=True).to_pil()


def _mixed_pdf(scan_lines: list[str]) -> bytes:
    """Page 1 with a text layer, page 2 only an image of text (a scanned page)."""
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=A4, invariant=1)
    c.setFont("Helvetica", 12)
    c.drawString(72, 760, DIGITAL_SENTENCE)
    c.showPage()
    c.drawImage(ImageReader(_scan_of(scan_lines)), 0, 0, *A4)
    c.showPage()
    c.save()
    return buffer.getvalue()


class TestEngines:
    def test_default_is_pdfium_and_is_recorded(self) -> None:
        """A plain PDF is read by PDFium, and the result says so."""
        result = extract((DOCS / "plain.pdf").read_bytes(), filename="plain.pdf")
        assert result.status is ParseStatus.OK
        assert (result.engine, result.parser) == ("pdfium", "pypdfium2")
        assert result.ocr_pages == ()

    def test_pdfminer_engine_on_request(self) -> None:
        """pdf_engine = pdfminer reads with pdfminer.six only."""
        result = extract((DOCS / "plain.pdf").read_bytes(),
                         limits=Limits(pdf_engine="pdfminer"))
        assert (result.status, result.engine, result.parser) == (
            ParseStatus.OK, "pdfminer", "pdfminer.six")
        assert "We support the proposal for more buses." in result.text

    def test_page_without_character_map_falls_back_to_pdfminer(self) -> None:
        """PDFium's unmapped glyphs send the page to pdfminer, which also finds it garbled."""
        result = extract((DOCS / "cid_garbled.pdf").read_bytes())
        assert result.status is ParseStatus.GARBLED
        assert result.engine == "pdfminer"
        assert any("no character map" in warning for warning in result.warnings)

    def test_pdfium_only_reports_unmapped_text_as_garbled(self) -> None:
        """Without the fallback the glyph numbers are judged garbled, not taken as text."""
        result = extract((DOCS / "cid_garbled.pdf").read_bytes(),
                         limits=Limits(pdf_engine="pdfium"))
        assert result.status is ParseStatus.GARBLED

    def test_file_pdfium_cannot_open_is_corrupt_for_both(self) -> None:
        """A truncated file is corrupt whichever engine is asked."""
        data = (DOCS / "plain.pdf").read_bytes()[:200]
        for engine in ("auto", "pdfium", "pdfminer"):
            assert extract(data, limits=Limits(pdf_engine=engine)).status is ParseStatus.CORRUPT

    def test_encrypted_needs_the_encrypt_entry(self) -> None:
        """A user password gives encrypted; the owner-password file reads with PDFium."""
        assert extract((DOCS / "user_password.pdf").read_bytes()).status \
            is ParseStatus.ENCRYPTED
        result = extract((DOCS / "owner_password.pdf").read_bytes())
        assert (result.status, result.engine) == (ParseStatus.OK, "pdfium")


class TestLayout:
    def test_interleaved_columns_are_read_column_by_column(self) -> None:
        """Lines alternating between two columns come out left column first."""
        lines = []
        for row in range(4):
            top = 700 - row * 14
            lines.append(PageLine(f"left {row} words words words", 72, top - 10, 280, top))
            lines.append(PageLine(f"right {row} words words words", 310, top - 10, 520, top))
        text = order_lines(lines)
        assert text.split("\n") == [f"left {r} words words words" for r in range(4)] + [""] + [
            f"right {r} words words words" for r in range(4)]

    def test_table_cells_are_not_taken_for_columns(self) -> None:
        """Short cells side by side stay rows, joined by tabs."""
        lines = []
        for row in range(4):
            top = 700 - row * 14
            cells = tuple(PageLine(f"c{row}{col}", 72 + col * 150, top - 10, 100 + col * 150,
                                   top) for col in range(3))
            lines.append(PageLine(" ".join(c.text for c in cells), 72, top - 10, 400, top,
                                  cells))
        assert order_lines(lines) == "\n".join(
            "\t".join(f"c{row}{col}" for col in range(3)) for row in range(4))

    @pytest.mark.parametrize(("text", "expected"), [
        ("an ap-\npraisal of it", "an appraisal\nof it"),
        ("the re-\nprocurement plan", "the re-procurement\nplan"),
        ("the re-\nspondents said", "the respondents\nsaid"),
        ("a co-\noperative", "a co-operative"),
        ("evidence-\nbased.", "evidence-based."),
        ("main\u00ad\ntenance costs", "maintenance\ncosts"),
        ("cycle-\nway and a cycleway", "cycleway\nand a cycleway"),
        ("bus-\nlane and a bus-lane", "bus-lane\nand a bus-lane"),
        ("in 2024-\n25 we", "in 2024-\n25 we"),
    ])
    def test_line_end_hyphens(self, text: str, expected: str) -> None:
        """Split words are joined; real compounds keep their hyphen; soft hyphens go."""
        assert join_hyphens(text) == expected

    def test_running_headers_footers_and_page_numbers_removed(self) -> None:
        """Lines repeated at the top or bottom of the pages go; the body stays."""
        pages = [f"Kilbride Council response\nBody of page {n} with text.\nPage {n} of 3"
                 for n in range(1, 4)]
        kept, removed = remove_running(pages)
        assert kept == [f"Body of page {n} with text." for n in range(1, 4)]
        assert "Kilbride Council response" in removed


class TestSplitAcrossWorkers:
    def test_long_pdf_is_split_and_joined_back_identically(self) -> None:
        """A long PDF read by two workers gives exactly the in-process text."""
        data = load_generator().long_pdf(120)
        alone = extract(data, filename="long.pdf")
        with ExtractionPool(processes=2) as pool:
            result = pool.extract(data, filename="long.pdf")
            assert pool.splits == 1
        assert result.status is ParseStatus.OK and result.pages == 120
        assert result.text == alone.text
        assert result.name == "long.pdf" and result.engine == "pdfium"

    def test_only_the_last_file_is_split(self) -> None:
        """With other files waiting a long PDF takes one worker; the last one is split."""
        long = load_generator().long_pdf(120)
        plain = (DOCS / "plain.pdf").read_bytes()
        jobs = [ExtractJob(1, long, "a.pdf"), ExtractJob(2, plain, "b.pdf"),
                ExtractJob(3, long, "c.pdf")]
        with ExtractionPool(processes=2) as pool:
            results = {job.key: result for job, result in pool.extract_many(jobs)}
            assert pool.splits == 1
        assert results[1].text == results[3].text and results[2].status is ParseStatus.OK

    def test_split_pdf_shares_keep_the_time_limit(self) -> None:
        """A share that overruns the limit makes the document a timeout; the pool goes on."""
        gen = load_generator()
        limits = Limits(parse_timeout_s=1.0, pdf_engine="pdfminer")
        jobs = [ExtractJob("plain", (DOCS / "plain.pdf").read_bytes(), "plain.pdf"),
                ExtractJob("long", gen.long_pdf(400), "long.pdf")]
        with ExtractionPool(limits, processes=2) as pool:
            results = {job.key: result for job, result in pool.extract_many(jobs)}
            assert pool.splits == 1
        assert results["long"].status is ParseStatus.TIMEOUT
        assert results["long"].name == "long.pdf"
        assert results["plain"].status is ParseStatus.OK


# Skipped only on a developer machine without tesseract; CI installs it
# (scripts/system-deps.sh) and must run these.
needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None and not os.environ.get("CI"),
    reason="tesseract-ocr is installed by scripts/system-deps.sh")


@needs_tesseract
class TestOcr:
    def test_scanned_page_inside_a_digital_pdf_is_ocred(self) -> None:
        """Only the image-only page goes to OCR; the result names it."""
        data = _mixed_pdf([SCANNED_SENTENCE, "on Mill Road."])
        result = extract(data, limits=Limits(ocr_enabled=True, ocr_languages="eng"))
        assert result.status is ParseStatus.OK
        assert result.ocr_pages == (2,)
        assert result.engine == "pdfium+tesseract"
        assert DIGITAL_SENTENCE in result.text
        assert SCANNED_SENTENCE in " ".join(result.text.split())

    def test_without_ocr_the_scanned_page_is_reported(self) -> None:
        """With OCR off the text layer is kept and the scanned page is named."""
        result = extract(_mixed_pdf([SCANNED_SENTENCE]))
        assert result.status is ParseStatus.OK and result.ocr_pages == ()
        assert any("need OCR): 2" in warning for warning in result.warnings)

    def test_welsh_language_pack(self) -> None:
        """[ocr] languages reaches tesseract: Welsh text read with eng+cym."""
        result = extract(_mixed_pdf(["Mae angen lloches", "yn yr orsaf fysiau."]),
                         limits=Limits(ocr_enabled=True, ocr_languages="cym+eng"))
        assert result.ocr_pages == (2,)
        assert "lloches" in result.text and "fysiau" in result.text

    def test_page_timeout_leaves_the_page_unread(self) -> None:
        """A page over its OCR time is reported as needing OCR, not a hang."""
        limits = Limits(ocr_enabled=True, ocr_page_timeout_s=0.05)
        result = extract(_mixed_pdf([SCANNED_SENTENCE]), limits=limits)
        assert result.status is ParseStatus.OK and result.ocr_pages == ()
        assert any("OCR failed or took too long: page 2" in w for w in result.warnings)

    def test_whole_scan_is_ocred_page_by_page(self) -> None:
        """A PDF of two scanned pages is read by OCR alone."""
        buffer = io.BytesIO()
        c = canvas.Canvas(buffer, pagesize=A4, invariant=1)
        for lines in ([SCANNED_SENTENCE], ["Second page of the letter."]):
            c.drawImage(ImageReader(_scan_of(lines)), 0, 0, *A4)
            c.showPage()
        c.save()
        result = extract(buffer.getvalue(), limits=Limits(ocr_enabled=True))
        assert result.status is ParseStatus.OK
        assert (result.engine, result.ocr_pages, result.parser) == (
            "tesseract", (1, 2), "pypdfium2")
        assert "page of the letter." in result.text
