"""PDF text: PDFium first, pdfminer.six behind it, OCR for pages without a text layer.

``[extraction] pdf_engine`` (:attr:`Limits.pdf_engine`) picks the engine:

- ``auto`` (default): PDFium (through pypdfium2) reads each page; pdfminer.six reads a
  page that PDFium fails on, gets no text from although it draws text, or gets text
  whose characters have no Unicode map (sampled with ``FPDFText_HasUnicodeMapError``);
  pdfminer reads the whole file when PDFium cannot open it.
- ``pdfium``: PDFium only; ``pdfminer``: pdfminer.six only (the reader before PDFium).

Pages are read by :mod:`parsers.pdfium_engine` (text in reading order, with the signals
above) and :mod:`parsers.pdfminer_engine`. A page with images and no text is rendered by
PDFium (grey, 300 dpi) and read by tesseract when OCR is on (:mod:`parsers.ocr`), one page at
a time with its own timeout; otherwise it is reported as needing OCR.

PDFium's error code is process-wide and may describe an earlier file, so a failure to open counts as
"encrypted" only when the file has an ``/Encrypt`` entry.

A long PDF can be read by several workers, each taking every k-th page
(:func:`read_pages` with ``first``/``step``); :func:`parsers.pdfpages.assemble` joins
them, removes running headers and footers and joins line-end hyphens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from parsers import ocr, pdfium_engine
from parsers.detect import PDF as PDF_TYPE
from parsers.errors import CorruptDocument, EncryptedDocument, ParseError, ParseTimeout, TooLarge
from parsers.outcome import finish
from parsers.pdfpages import (
    CORRUPT,
    ENCRYPTED,
    Assembled,
    PageText,
    PdfPages,
    assemble,
)
from parsers.result import ExtractResult, Limits
from parsers.versions import Parser, package_parser

if TYPE_CHECKING:
    from parsers.context import ExtractContext, Extraction
    from parsers.pdfminer_engine import MinerDocument

__all__ = [
    "ENGINES",
    "PARSER",
    "extract_pdf",
    "merge_shards",
    "read_pages",
    "read_shard",
    "to_extraction",
]

ENGINES = ("auto", "pdfium", "pdfminer")
PARSER = Parser("pypdfium2", package_parser("pypdfium2").version)
_OCR_DPI = 300
_NO_TEXT = "read with pdfminer: PDFium found no text"
_UNMAPPED = "read with pdfminer: PDFium's text had no character map"
_PDFIUM_FAILED = "read with pdfminer: PDFium could not read the page"


def extract_pdf(data: bytes, ctx: ExtractContext) -> Extraction:
    """Extract the text of a PDF, one page at a time, within the context's limits."""
    return to_extraction(assemble([read_pages(data, ctx.limits, ctx.check_time,
                                              deadline=ctx.deadline)]))


def to_extraction(found: Assembled) -> Extraction:
    """The registry's :class:`Extraction` for an assembled document."""
    from parsers.context import Extraction

    only_miner = "pdfminer" in found.engine and "pdfium" not in found.engine
    parser = _miner_parser() if only_miner else PARSER
    return Extraction(text=found.text, pages=found.pages, warnings=found.warnings,
                      parser=parser, engine=found.engine, ocr_pages=found.ocr_pages)


def _miner_parser() -> Parser:
    from parsers.pdfminer_engine import PARSER as MINER

    return MINER


def read_pages(data: bytes, limits: Limits, check_time: Callable[[str], None],
               first: int = 0, step: int = 1, deadline: float = float("inf")) -> PdfPages:
    """Read pages ``first, first + step, ...`` of a PDF with the configured engine.

    Raises:
        EncryptedDocument, CorruptDocument, TooLarge, ParseTimeout: for the whole file.
    """
    if limits.pdf_engine == "pdfminer":
        return _Reader(data, limits, check_time, None, deadline).read(first, step)
    try:
        document = pdfium.PdfDocument(data, password="")
    except pdfium.PdfiumError as exc:
        if b"/Encrypt" in data and exc.err_code == pdfium_c.FPDF_ERR_PASSWORD:
            raise EncryptedDocument(ENCRYPTED) from exc
        if limits.pdf_engine == "pdfium":
            raise CorruptDocument(CORRUPT) from exc
        reader = _Reader(data, limits, check_time, None, deadline)
        found = reader.read(first, step)
        found.warnings.append("read with pdfminer: PDFium could not open the file")
        return found
    try:
        return _Reader(data, limits, check_time, document, deadline).read(first, step)
    finally:
        document.close()


class _Reader:
    """One pass over a document's pages with PDFium, pdfminer and OCR as needed."""

    def __init__(self, data: bytes, limits: Limits, check_time: Callable[[str], None],
                 document: pdfium.PdfDocument | None, deadline: float) -> None:
        self.data = data
        self.deadline = deadline
        self.limits = limits
        self.check_time = check_time
        self.document = document
        self._miner: MinerDocument | None = None
        self._miner_failed = False

    def miner(self) -> MinerDocument | None:
        """pdfminer's view of the document, opened on first need."""
        if self._miner is None and not self._miner_failed:
            from parsers.pdfminer_engine import MinerDocument

            try:
                self._miner = MinerDocument(self.data)
            except (CorruptDocument, EncryptedDocument):
                if self.document is None:
                    raise
                self._miner_failed = True
        return self._miner

    def read(self, first: int, step: int) -> PdfPages:
        if self.document is not None:
            count = len(self.document)
            encrypted = b"/Encrypt" in self.data
        else:
            miner = self.miner()
            assert miner is not None
            count, encrypted = len(miner.pages), miner.encrypted
        if count == 0:
            raise CorruptDocument("This PDF has no readable pages; it may be damaged.")
        if count > self.limits.max_pages:
            raise TooLarge(
                f"This PDF has {count:,} pages, over the {self.limits.max_pages:,}-page "
                "limit; please send it in smaller parts.", pages=count)
        found = PdfPages(count=count, encrypted=encrypted)
        for done, index in enumerate(range(first, count, step)):
            self.check_time(f" after {done} of {count} pages")
            found.pages.append(self._page(index))
        return found

    def _page(self, index: int) -> PageText:
        number = index + 1
        if self.document is None:
            return self._miner_page(index, PageText(number), "")
        try:
            text, fonts, images, garbled = pdfium_engine.page_text(self.document, index)
        except pdfium.PdfiumError:
            if self.limits.pdf_engine == "pdfium":
                return PageText(number, failed=True)
            return self._miner_page(index, PageText(number), _PDFIUM_FAILED)
        page = PageText(number, text, "pdfium")
        auto = self.limits.pdf_engine == "auto"
        if garbled and auto:
            return self._miner_page(index, page, _UNMAPPED, prefer=True)
        if pdfium_engine.enough_text(text):
            return page
        if fonts and auto:
            page = self._miner_page(index, page, _NO_TEXT)
            if pdfium_engine.enough_text(page.text):
                return page
        if images:
            return self._ocr_page(index, page)
        return page

    def _miner_page(self, index: int, page: PageText, note: str, prefer: bool = False
                    ) -> PageText:
        """The page read by pdfminer when it gives more (or ``prefer``: any) text."""
        miner = self.miner()
        found = miner.page_text(index) if miner is not None and index < len(miner.pages) \
            else None
        if found is None:
            if not page.engine:
                page.failed = True
            return page
        text, images = found
        if self.document is None:
            page = PageText(page.number, text, "pdfminer")
            if images and not pdfium_engine.enough_text(text):
                return self._ocr_page(index, page)
            return page
        if prefer or pdfium_engine.visible(text) > pdfium_engine.visible(page.text):
            return PageText(page.number, text, "pdfminer", note=note)
        return page

    def _ocr_page(self, index: int, page: PageText) -> PageText:
        """OCR a page of images (when OCR is on); else mark it as needing OCR."""
        if not self.limits.ocr_enabled or not ocr.available():
            page.needs_ocr = True
            return page
        image = self._render(index)
        if image is None:
            page.needs_ocr = True
            return page
        # A page never runs past the file's own time limit either.
        timeout = min(self.limits.ocr_page_timeout_s, self.deadline - time.monotonic())
        text = ocr.read_page(image, self.limits, max(timeout, 0.1))
        if text is None:
            page.needs_ocr = True
            page.note = "OCR failed or took too long"
            return page
        return PageText(page.number, text, "tesseract")

    def _render(self, index: int) -> bytes | None:
        """The page as a grey PGM image at 300 dpi (rendered by PDFium)."""
        document = self.document
        if document is None:
            try:
                document = pdfium.PdfDocument(self.data, password="")
            except pdfium.PdfiumError:
                return None
        try:
            return pdfium_engine.render_pgm(document, index, _OCR_DPI)
        except pdfium.PdfiumError:
            return None
        finally:
            if document is not self.document:
                document.close()


def read_shard(data: bytes, limits: Limits, first: int, step: int) -> PdfPages | ExtractResult:
    """Read every ``step``-th page from ``first`` (a share of a long PDF, in a worker).

    Returns the pages, or the result for the whole file when it cannot be read (the
    pool then reports that for the document). The time limit starts now, per share.
    """
    deadline = time.monotonic() + limits.parse_timeout_s

    def check_time(done: str = "") -> None:
        if time.monotonic() > deadline:
            raise ParseTimeout(
                f"Reading this file took longer than {limits.parse_timeout_s:g} s "
                f"and was stopped{done}; staff will look at it by hand.")

    started = time.monotonic()
    try:
        return read_pages(data, limits, check_time, first, step, deadline)
    except ParseError as exc:
        return ExtractResult(status=exc.status, message=exc.message, detected_type=PDF_TYPE,
                             parser=PARSER.name, parser_version=PARSER.version,
                             pages=exc.pages, elapsed_s=time.monotonic() - started)


def merge_shards(parts: list[PdfPages | ExtractResult], limits: Limits, started: float,
                 filename: str | None, declared_type: str | None) -> ExtractResult:
    """The document's result from its shares (the first failed share decides a failure)."""
    failed = [part for part in parts if isinstance(part, ExtractResult)]
    if failed:
        return replace(failed[0], name=filename, declared_type=declared_type,
                       elapsed_s=time.monotonic() - started)
    pages = [part for part in parts if isinstance(part, PdfPages)]
    try:
        found = to_extraction(assemble(pages))
    except ParseError as exc:
        return ExtractResult(status=exc.status, message=exc.message, detected_type=PDF_TYPE,
                             parser=PARSER.name, parser_version=PARSER.version,
                             pages=exc.pages, name=filename, declared_type=declared_type,
                             elapsed_s=time.monotonic() - started)
    return finish(found, PDF_TYPE, found.parser or PARSER, limits, started, filename,
                  declared_type)
