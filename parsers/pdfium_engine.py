"""The PDFium engine (through pypdfium2): one page's text, in reading order, with signals.

:func:`page_text` opens a page and its text page with PDFium's C calls directly (the
helper objects' bookkeeping costs as much as a plain page's text) and returns the
text, whether the page draws text, whether it holds images, and whether its
characters lack a Unicode map (sampled with ``FPDFText_HasUnicodeMapError``).

PDFium gives a page's text in its content order with its own line breaks; the boxes
of each line (``FPDFText_CountRects``/``GetRect`` over the line's characters, a few
calls per line) let :mod:`parsers.pdflayout` fix two columns read across, split table
cells apart and find paragraph breaks. At a line-end hyphen PDFium writes U+FFFE (or
U+0002) and drops the line break: it comes back as ``-\n`` for
:func:`parsers.pdflayout.join_hyphens`. :func:`render_pgm` renders a page for OCR.

PDFium is not thread-safe: each extraction worker uses it from one thread.
"""

from __future__ import annotations

import ctypes
import re
from typing import Any

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from parsers.pdflayout import PDFIUM_HYPHEN_MARKS, PageLine, order_lines
from parsers.pdfpages import SCAN_CHARS_PER_PAGE

__all__ = ["enough_text", "page_text", "render_pgm", "visible"]

_GARBLED_SHARE = 0.3
_SAMPLE = 24  # characters checked for a missing Unicode map, spread over the page
_OCR_MAX_PIXELS = 40_000_000  # about an A3 page at 300 dpi
_UNMAPPED_TEXT = re.compile(r"\S")


def visible(text: str) -> int:
    """Characters of ``text`` that are not white space."""
    return len("".join(text.split()))


def enough_text(text: str, wanted: int = SCAN_CHARS_PER_PAGE) -> bool:
    """Whether ``text`` has at least ``wanted`` characters that are not white space.

    Looks at the start of the text first: a page of text passes without its whole
    text being counted (this is asked several times of every page).
    """
    return visible(text[: 8 * wanted]) >= wanted or visible(text) >= wanted


def render_pgm(document: pdfium.PdfDocument, index: int, dpi: int) -> bytes:
    """Page ``index`` as a grey PGM image at ``dpi`` (at most 40 megapixels)."""
    page = document[index]
    try:
        width, height = page.get_size()
        scale = min(dpi / 72, (_OCR_MAX_PIXELS / max(width * height, 1.0)) ** 0.5)
        return _pgm(page.render(scale=scale, grayscale=True))
    finally:
        page.close()


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


def page_text(document: pdfium.PdfDocument, index: int) -> tuple[str, bool, bool, bool]:
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
    if not enough_text(text):
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


_DRAWN = (pdfium_c.FPDF_PAGEOBJ_IMAGE, pdfium_c.FPDF_PAGEOBJ_PATH, pdfium_c.FPDF_PAGEOBJ_SHADING)


def _object_kinds(page: pdfium.PdfPage) -> tuple[bool, bool]:
    """Whether the page draws text, and whether it draws anything else (forms included).

    A page drawn only with images or vector paths (a scan, or a letter whose text was
    turned into outlines) has something a person can read that is not text: it needs
    OCR, never "empty".
    """
    fonts = images = False
    for obj in page.get_objects(max_depth=3):
        kind = obj.type
        fonts = fonts or kind == pdfium_c.FPDF_PAGEOBJ_TEXT
        images = images or kind in _DRAWN
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
                rects = count_rects(handle, position, len(row))
                if rects == 1:  # most lines: one box, no grouping to do
                    if get_rect(handle, 0, *out):
                        lines.append(PageLine(row, x0.value, bottom.value, x1.value, top.value))
                else:
                    boxes = []
                    for index in range(rects):
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
