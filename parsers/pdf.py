"""PDF text: PDFium first, pdfminer.six behind it, OCR for pages without a text layer.

``[extraction] pdf_engine`` (:attr:`Limits.pdf_engine`) picks the engine:

- ``auto`` (default): PDFium (through pypdfium2) reads each page; pdfminer.six reads a
  page that PDFium fails on, gets no text from although it draws text, or gets text
  whose characters have no Unicode map (sampled with ``FPDFText_HasUnicodeMapError``);
  pdfminer reads the whole file when PDFium cannot open it.
- ``pdfium``: PDFium only; ``pdfminer``: pdfminer.six only (the reader before PDFium).

PDFium gives a page's text in its content order with its own line breaks; the boxes of
each line (``FPDFText_CountRects``/``GetRect`` over the line's characters, a few calls
per line) let :mod:`parsers.pdflayout` fix two columns read across, split table cells
apart and find paragraph breaks. A page with images and no text is rendered by PDFium
(grey, 300 dpi) and read by tesseract when OCR is on (:mod:`parsers.ocr`), one page at
a time with its own timeout; otherwise it is reported as needing OCR.

PDFium is not thread-safe: each extraction worker is one thread. Its error code is
process-wide and may describe an earlier file, so a failure to open counts as
"encrypted" only when the file has an ``/Encrypt`` entry.

A long PDF can be read by several workers, each taking every k-th page
(:func:`read_pages` with ``first``/``step``); :func:`parsers.pdfpages.assemble` joins
them, removes running headers and footers and joins line-end hyphens.
"""

from __future__ import annotations

import ctypes
import re
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from parsers import ocr
from parsers.detect import PDF as PDF_TYPE
from parsers.errors import CorruptDocument, EncryptedDocument, ParseError, ParseTimeout, TooLarge
from parsers.pdflayout import PDFIUM_HYPHEN_MARKS, PageLine, order_lines
from parsers.pdfpages import (
    CORRUPT,
    ENCRYPTED,
    SCAN_CHARS_PER_PAGE,
    Assembled,
    PageText,
    PdfPages,
    assemble,
)
from parsers.result import ExtractResult, Limits
from parsers.versions import Parser, package_parser

if TYPE_CHECKING:
    from parsers.pdfminer_engine import MinerDocument
    from parsers.registry import ExtractContext, Extraction

__all__ = [
    "ENGINES",
    "PARSER",
    "extract_pdf",
    "merge_shards",
    "page_count_hint",
    "read_pages",
    "read_shard",
    "to_extraction",
]

ENGINES = ("auto", "pdfium", "pdfminer")
PARSER = Parser("pypdfium2", package_parser("pypdfium2").version)
_GARBLED_SHARE = 0.3
_SAMPLE = 24  # characters checked for a missing Unicode map, spread over the page
_OCR_DPI = 300
_OCR_MAX_PIXELS = 40_000_000  # about an A3 page at 300 dpi
_UNMAPPED_TEXT = re.compile(r"\S")
_NO_TEXT = "read with pdfminer: PDFium found no text"
_UNMAPPED = "read with pdfminer: PDFium's text had no character map"
_PDFIUM_FAILED = "read with pdfminer: PDFium could not read the page"


def extract_pdf(data: bytes, ctx: ExtractContext) -> Extraction:
    """Extract the text of a PDF, one page at a time, within the context's limits."""
    return to_extraction(assemble([read_pages(data, ctx.limits, ctx.check_time,
                                              deadline=ctx.deadline)]))


def to_extraction(found: Assembled) -> Extraction:
    """The registry's :class:`Extraction` for an assembled document."""
    from parsers.registry import Extraction

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
            text, fonts, images, garbled = _pdfium_page(self.document, index)
        except pdfium.PdfiumError:
            if self.limits.pdf_engine == "pdfium":
                return PageText(number, failed=True)
            return self._miner_page(index, PageText(number), _PDFIUM_FAILED)
        page = PageText(number, text, "pdfium")
        auto = self.limits.pdf_engine == "auto"
        if garbled and auto:
            return self._miner_page(index, page, _UNMAPPED, prefer=True)
        if _visible(text) >= SCAN_CHARS_PER_PAGE:
            return page
        if fonts and auto:
            page = self._miner_page(index, page, _NO_TEXT)
            if _visible(page.text) >= SCAN_CHARS_PER_PAGE:
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
            if images and _visible(text) < SCAN_CHARS_PER_PAGE:
                return self._ocr_page(index, page)
            return page
        if prefer or _visible(text) > _visible(page.text):
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
            page = document[index]
            width, height = page.get_size()
            # 300 dpi, but never more than _OCR_MAX_PIXELS (a poster-sized page).
            scale = min(_OCR_DPI / 72, (_OCR_MAX_PIXELS / max(width * height, 1.0)) ** 0.5)
            bitmap = page.render(scale=scale, grayscale=True)
            return _pgm(bitmap)
        except pdfium.PdfiumError:
            return None
        finally:
            if document is not self.document:
                document.close()


def _pgm(bitmap: pdfium.PdfBitmap) -> bytes:
    """A PDFium bitmap as a binary PGM (8-bit grey or BGR/BGRA converted to grey)."""
    width, height, stride = bitmap.width, bitmap.height, bitmap.stride
    channels = bitmap.n_channels
    buffer = bytes(bitmap.buffer)
    rows = []
    for row in range(height):
        line = buffer[row * stride: row * stride + width * channels]
        rows.append(line if channels == 1 else line[1::channels])  # green ~ luminance
    return b"P5\n%d %d\n255\n" % (width, height) + b"".join(rows)


def _visible(text: str) -> int:
    return len("".join(text.split()))


def _pdfium_page(document: pdfium.PdfDocument, index: int) -> tuple[str, bool, bool, bool]:
    """A page's text in reading order, and whether it draws text, holds images and
    has characters without a Unicode map.

    Uses PDFium's C calls directly (the page and its text page are opened and closed
    here): the helper objects' bookkeeping costs as much as a plain page's text.
    """
    page = pdfium_c.FPDF_LoadPage(document.raw, index)
    if not page:
        raise pdfium.PdfiumError(f"Failed to load page {index + 1}.")
    try:
        textpage = pdfium_c.FPDFText_LoadPage(page)
        if not textpage:
            raise pdfium.PdfiumError(f"Failed to load the text of page {index + 1}.")
        try:
            count = pdfium_c.FPDFText_CountChars(textpage)
            raw = _all_text(textpage, count) if count > 0 else ""
            garbled = count > 0 and _unmapped_share(textpage, count) > _GARBLED_SHARE
            # Without a character map the "text" is glyph numbers: mark every one as
            # undecodable, so the registry reports it as garbled.
            text = _UNMAPPED_TEXT.sub("\ufffd", raw) if garbled else _page_text(
                textpage, raw, count)
        finally:
            pdfium_c.FPDFText_ClosePage(textpage)
    finally:
        pdfium_c.FPDF_ClosePage(page)
    fonts = images = False
    if _visible(text) < SCAN_CHARS_PER_PAGE:
        helper = document[index]
        try:
            fonts, images = _object_kinds(helper)
        finally:
            helper.close()
    return text, fonts, images, garbled


def _all_text(textpage: Any, count: int) -> str:
    buffer = (ctypes.c_ushort * (count + 1))()
    written = pdfium_c.FPDFText_GetText(textpage, 0, count, buffer)
    if written <= 1:
        return ""
    return bytes(buffer)[: 2 * (written - 1)].decode("utf-16-le", "ignore")


def _bounded_text(textpage: Any, left: float, bottom: float, right: float, top: float
                  ) -> str:
    size = pdfium_c.FPDFText_GetBoundedText(textpage, left, top, right, bottom, None, 0)
    if size <= 0:
        return ""
    buffer = (ctypes.c_ushort * (size + 1))()
    written = pdfium_c.FPDFText_GetBoundedText(textpage, left, top, right, bottom, buffer,
                                               size)
    return bytes(buffer)[: 2 * max(written, 0)].decode("utf-16-le", "ignore").rstrip("\0")


def _unmapped_share(textpage: Any, count: int) -> float:
    step = max(1, count // _SAMPLE)
    checked = range(0, count, step)
    unmapped = pdfium_c.FPDFText_HasUnicodeMapError
    bad = sum(1 for i in checked if unmapped(textpage, i) == 1)
    return bad / len(checked)


def _object_kinds(page: pdfium.PdfPage) -> tuple[bool, bool]:
    """Whether the page draws text, and whether it holds images (forms included)."""
    fonts = images = False
    for obj in page.get_objects(max_depth=3):
        kind = obj.type
        fonts = fonts or kind == pdfium_c.FPDF_PAGEOBJ_TEXT
        images = images or kind == pdfium_c.FPDF_PAGEOBJ_IMAGE
        if fonts and images:
            break
    return fonts, images


def _page_text(textpage: Any, raw: str, count: int) -> str:
    """Lines with their boxes, put in reading order; plain lines if boxes don't fit."""
    for mark in PDFIUM_HYPHEN_MARKS:
        raw = raw.replace(mark, "-\n")
    if len(raw) - raw.count("\n") + raw.count("\r\n") != count or "\r\n" not in raw:
        # Text and character indexes differ (inserted or dropped characters): keep
        # PDFium's order, without boxes.
        return raw.replace("\r\n", "\n").replace("\r", "\n")
    return order_lines(_lines(textpage, raw))


def _lines(textpage: Any, raw: str) -> list[PageLine]:
    lines: list[PageLine] = []
    position = 0
    # Raw calls with reused out-parameters: a page has dozens of lines, and this is
    # most of the per-page work besides PDFium's own.
    x0, top, x1, bottom = (ctypes.c_double() for _ in range(4))
    out = (ctypes.byref(x0), ctypes.byref(top), ctypes.byref(x1), ctypes.byref(bottom))
    count_rects, get_rect = pdfium_c.FPDFText_CountRects, pdfium_c.FPDFText_GetRect
    handle = textpage
    for logical in raw.split("\r\n"):
        # A "-\n" from a hyphen mark stands for one character of the page; the rows
        # it joined are kept apart here (they may even lie in different columns).
        for row in logical.split("\n") if "\n" in logical else (logical,):
            if row and not row.isspace():
                boxes = []
                for index in range(count_rects(handle, position, len(row))):
                    if get_rect(handle, index, *out):
                        boxes.append((x0.value, bottom.value, x1.value, top.value))
                if boxes:
                    lines.append(_line(textpage, row, boxes))
            position += len(row)
        position += 2
    return lines


def _line(textpage: Any, text: str,
          boxes: list[tuple[float, float, float, float]]) -> PageLine:
    if len(boxes) == 1:
        return PageLine(text, *boxes[0])
    left = min(b[0] for b in boxes)
    bottom = min(b[1] for b in boxes)
    right = max(b[2] for b in boxes)
    top = max(b[3] for b in boxes)
    # Pieces of one row far apart (table cells, or two columns read across) keep
    # their own text and box.
    ordered = sorted(boxes, key=lambda b: b[0])
    groups: list[list[tuple[float, float, float, float]]] = [[ordered[0]]]
    for box in ordered[1:]:
        previous = groups[-1][-1]
        height = max(min(box[3] - box[1], previous[3] - previous[1]), 1.0)
        overlap = min(box[3], previous[3]) - max(box[1], previous[1])
        if overlap < 0.5 * height:
            return PageLine(text, left, bottom, right, top)  # not one row
        if box[0] - previous[2] > 1.5 * height:
            groups.append([box])
        else:
            groups[-1].append(box)
    if len(groups) < 2:
        return PageLine(text, left, bottom, right, top)
    parts = []
    for group in groups:
        x0, y0 = min(g[0] for g in group), min(g[1] for g in group)
        x1, y1 = max(g[2] for g in group), max(g[3] for g in group)
        piece = _bounded_text(textpage, x0 - 0.5, y0 - 0.5, x1 + 0.5, y1 + 0.5)
        for mark in PDFIUM_HYPHEN_MARKS:
            piece = piece.replace(mark, "-")
        parts.append(PageLine(" ".join(piece.split()), x0, y0, x1, y1))
    if text.endswith("-") and not parts[-1].text.endswith("-"):
        last = parts[-1]
        parts[-1] = PageLine(last.text + "-", last.left, last.bottom, last.right, last.top)
    return PageLine(text, left, bottom, right, top, tuple(parts))


def page_count_hint(data: bytes) -> int:
    """A cheap guess at a PDF's page count from its bytes (no parsing; 0 if unknown).

    Counts page objects written in the clear; pages inside compressed object streams
    are not seen. Used only to decide whether to split a document across workers.
    """
    count = data.count(b"/Type/Page") - data.count(b"/Type/Pages")
    count += data.count(b"/Type /Page") - data.count(b"/Type /Pages")
    return max(count, 0)


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
    from parsers.registry import finish

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
