"""The pdfminer.six engine: a PDF's pages one at a time, as text and image counts.

Used for a whole document when ``[extraction] pdf_engine = "pdfminer"`` or when PDFium
cannot open the file, and for single pages PDFium gets nothing or garbage from
(:mod:`parsers.pdf` decides).

Layout choice: ``LAParams(boxes_flow=None, line_margin=0.6)``. pdfminer's default
layout analysis (which ``extract_text(laparams=None)`` silently uses too) reads simple
tables column by column and two-column pages line by line across the columns.
With ``boxes_flow=None`` text boxes are ordered top to bottom, then left to right, so
table rows come out in order (cells of one row are joined with tabs below); a
``line_margin`` of 0.6 keeps every sentence of a two-column page (below ~0.52 one is
lost, from ~0.7 the cells of adjacent table rows merge). It is also 1.3-1.5x faster
than the default. Two-column pages then alternate by paragraph rather than by line.

The empty password is tried first, so owner-password-only PDFs read fine; ``(cid:NN)``
output is judged ``garbled`` by the registry.
"""

from __future__ import annotations

import io
import re
import struct
import zlib

from pdfminer.converter import PDFPageAggregator
from pdfminer.layout import LAParams, LTFigure, LTImage, LTPage, LTTextBox
from pdfminer.pdfdocument import (
    PDFDocument,
    PDFEncryptionError,
    PDFNoValidXRef,
    PDFPasswordIncorrect,
)
from pdfminer.pdfexceptions import PDFException
from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
from pdfminer.pdfpage import PDFPage
from pdfminer.pdfparser import PDFParser
from pdfminer.pdftypes import PDFStream, resolve1
from pdfminer.psexceptions import PSException
from pdfminer.psparser import LIT

from parsers.errors import CorruptDocument, EncryptedDocument
from parsers.versions import package_parser

__all__ = ["CORRUPT", "ENCRYPTED", "LAYOUT", "PARSER", "MinerDocument"]

PARSER = package_parser("pdfminer.six")
# all_texts: also lay out text drawn inside form XObjects (figures), which the
# default leaves as loose characters that a text-box walk would never see.
LAYOUT = LAParams(boxes_flow=None, line_margin=0.6, all_texts=True)
_IMAGE = LIT("Image")
_SPACE_RUNS = re.compile(r" {2,}")
# A scan gives 0-2 characters per page from any parser (stray marks, a page number).
SCAN_CHARS_PER_PAGE = 10
# Errors pdfminer lets escape from broken files, besides its own exception classes.
_BROKEN = (PSException, PDFException, ValueError, KeyError, TypeError, IndexError,
           AttributeError, AssertionError, ZeroDivisionError, struct.error, zlib.error,
           EOFError, OSError, NotImplementedError, OverflowError)

ENCRYPTED = "This PDF is password-protected; please send a copy without a password."
CORRUPT = ("This PDF is damaged and could not be read; please send it again or save it "
            "as a new PDF.")



class MinerDocument:
    """A PDF opened with pdfminer.six, read page by page.

    Raises:
        EncryptedDocument: a password other than the empty one is needed.
        CorruptDocument: the file or its page tree cannot be parsed.
    """

    def __init__(self, data: bytes) -> None:
        self.document = _open(data)
        try:
            self.pages = list(PDFPage.create_pages(self.document))
        except _BROKEN as exc:
            raise CorruptDocument(CORRUPT) from exc
        self.encrypted = self.document.encryption is not None
        manager = PDFResourceManager(caching=True)
        self._device = PDFPageAggregator(manager, laparams=LAYOUT)
        self._interpreter = PDFPageInterpreter(manager, self._device)

    def page_text(self, index: int) -> tuple[str, bool] | None:
        """Text of page ``index`` (from 0) and whether it has images; None if it fails."""
        page = self.pages[index]
        try:
            self._interpreter.process_page(page)
            layout = self._device.get_result()
        except _BROKEN:
            return None
        text, images = _page_text(layout)
        page_chars = sum(1 for char in text if not char.isspace())
        if not images and page_chars < SCAN_CHARS_PER_PAGE:
            try:
                images = int(_has_images(page.resources))
            except _BROKEN:
                images = 0
        return text, images > 0


class _RescannedDocument(PDFDocument):
    """A document whose objects are found by scanning the file, ignoring its xref."""

    def find_xref(self, parser: PDFParser) -> int:
        raise PDFNoValidXRef("xref ignored: objects are found by scanning the file")


def _open(data: bytes) -> PDFDocument:
    try:
        return PDFDocument(PDFParser(io.BytesIO(data)), password="")
    except PDFPasswordIncorrect as exc:
        raise EncryptedDocument(ENCRYPTED) from exc
    except PDFEncryptionError:
        # The encryption dictionary could not be read through the xref table (often
        # a bogus xref). Scan the file for its objects and try the empty password
        # again: a wrong password then means encrypted, anything else damaged.
        pass
    except _BROKEN as exc:
        raise CorruptDocument(CORRUPT) from exc
    try:
        return _RescannedDocument(PDFParser(io.BytesIO(data)), password="")
    except PDFPasswordIncorrect as exc:
        raise EncryptedDocument(ENCRYPTED) from exc
    except _BROKEN as exc:
        raise CorruptDocument(CORRUPT) from exc


def _page_text(layout: LTPage | LTFigure, depth: int = 0) -> tuple[str, int]:
    """Paragraphs of one page (or figure), table rows joined with tabs; image count."""
    rows: list[list[LTTextBox]] = []
    figures: list[str] = []
    images = 0
    for item in layout:
        if isinstance(item, LTTextBox):
            row = rows[-1] if rows else None
            if row is not None and _same_row(row[-1], item):
                row.append(item)
            else:
                rows.append([item])
        elif isinstance(item, LTImage):
            images += 1
        elif isinstance(item, LTFigure) and depth < 20:
            text, inner = _page_text(item, depth + 1)
            images += inner
            figures.append(text)
    blocks: list[str] = []
    previous_cells = 1
    for row in rows:
        if len(row) == 1:
            blocks.append(_box_text(row[0]))
        else:
            line = "\t".join(_box_text(box).replace("\n", " ") for box in row)
            if previous_cells > 1 and blocks:
                blocks[-1] += "\n" + line  # consecutive table rows: one per line
            else:
                blocks.append(line)
        previous_cells = len(row)
    return "\n\n".join(b for b in blocks + figures if b), images


def _has_images(resources: object, depth: int = 0) -> bool:
    """True when page resources hold an image, also inside forms and tiling patterns."""
    resources = resolve1(resources)
    if not isinstance(resources, dict) or depth > 5:
        return False
    for key in ("XObject", "Pattern"):
        entries = resolve1(resources.get(key))
        if not isinstance(entries, dict):
            continue
        for value in list(entries.values())[:100]:
            item = resolve1(value)
            attrs = item.attrs if isinstance(item, PDFStream) else item
            if not isinstance(attrs, dict):
                continue
            if resolve1(attrs.get("Subtype")) is _IMAGE:
                return True
            if _has_images(attrs.get("Resources"), depth + 1):
                return True
    return False


def _same_row(left: LTTextBox, right: LTTextBox) -> bool:
    """True when two single-line boxes sit side by side on one baseline (table cells)."""
    if len(left) != 1 or len(right) != 1 or right.x0 < left.x1:
        return False
    overlap = min(left.y1, right.y1) - max(left.y0, right.y0)
    return overlap > 0.5 * min(left.height, right.height)


def _box_text(box: LTTextBox) -> str:
    lines = (_SPACE_RUNS.sub(" ", line).strip() for line in box.get_text().splitlines())
    return "\n".join(line for line in lines if line)
