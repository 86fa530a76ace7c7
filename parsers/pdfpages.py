"""What the PDF engines found, page by page, and how a document's pages become one text.

Pure module (no PDF library): the extraction workers fill :class:`PdfPages` (for the
whole document, or for every k-th page when a long PDF is split across workers) and
:func:`assemble` turns one or more of them into the document's text, engine summary,
OCR'd pages and warnings, or raises the status the document deserves (a scan without
OCR is ``needs_ocr``; a file with unreadable pages and no text is ``corrupt``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from parsers.errors import CorruptDocument, EmptyDocument, EncryptedDocument, NeedsOcr
from parsers.pdflayout import join_hyphens, page_ranges, remove_running, vocabulary

__all__ = ["CORRUPT", "ENCRYPTED", "Assembled", "PageText", "PdfPages", "assemble",
           "page_count_hint"]

# A scan gives 0-2 characters per page from any engine (stray marks, a page number).
SCAN_CHARS_PER_PAGE = 10
ENCRYPTED = "This PDF is password-protected; please send a copy without a password."
CORRUPT = ("This PDF is damaged and could not be read; please send it again or save it "
           "as a new PDF.")


@dataclass(slots=True)
class PageText:
    """One page: its text (lines, hyphen breaks still as ``-\\n``) and how it was read.

    ``engine`` is ``pdfium``, ``pdfminer`` or ``tesseract`` (OCR); ``failed`` means no
    engine could read the page; ``needs_ocr`` marks a page of images without text
    that was not OCRed; ``note`` says why a fallback engine was used.
    """

    number: int
    text: str = ""
    engine: str = ""
    failed: bool = False
    needs_ocr: bool = False
    note: str = ""


@dataclass(slots=True)
class PdfPages:
    """The pages one worker read (all of them, or every ``step``-th from ``first``)."""

    count: int
    pages: list[PageText] = field(default_factory=list)
    encrypted: bool = False
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Assembled:
    """A document's text and how it was read."""

    text: str
    pages: int
    engine: str
    ocr_pages: tuple[int, ...]
    warnings: list[str]
    removed: list[str]


def assemble(parts: Sequence[PdfPages]) -> Assembled:
    """Merge the pages read by one or more workers into the document's text.

    Raises:
        CorruptDocument: no page could be read, or some failed and the rest are empty.
        NeedsOcr: pages of images without text, and too little text elsewhere.
        EncryptedDocument: an encrypted file that gave no text at all.
        EmptyDocument: the pages hold no text.
    """
    count = max((part.count for part in parts), default=0)
    pages = sorted((page for part in parts for page in part.pages), key=lambda p: p.number)
    encrypted = any(part.encrypted for part in parts)
    if not pages:
        raise CorruptDocument("This PDF has no readable pages; it may be damaged.")
    failed = [p.number for p in pages if p.failed]
    # Counted only as far as the checks below need: a document of text passes on
    # its first page.
    needed = SCAN_CHARS_PER_PAGE * count
    chars = 0
    for page in pages:
        chars += len("".join(page.text.split()))
        if chars >= needed:
            break
    unread_scans = [p.number for p in pages if p.needs_ocr]
    if len(failed) == len(pages):
        raise CorruptDocument(CORRUPT, pages=count)
    if chars < SCAN_CHARS_PER_PAGE * count:
        if failed:
            raise CorruptDocument(CORRUPT, pages=count)
        if unread_scans:
            raise NeedsOcr(
                "This PDF is a scan without a text layer; its text needs OCR (text "
                "recognition) before it can be read.", pages=count)
        if encrypted and chars == 0:
            raise EncryptedDocument(ENCRYPTED, pages=count)
        if chars == 0:
            raise EmptyDocument("This PDF contains no text (its pages are blank).",
                                pages=count)
    texts, removed = remove_running([p.text for p in pages])
    if any("-\n" in text or "\u00ad" in text for text in texts):
        words = vocabulary("\n".join(texts))
        texts = [join_hyphens(text, words) for text in texts]
    body = "\n\n".join(t for t in texts if t)
    warnings = [w for part in parts for w in part.warnings]
    if failed:
        warnings.append(f"{len(failed)} of {count} pages could not be read: "
                        f"{page_ranges(failed)}")
    if unread_scans:
        warnings.append(f"pages without a text layer (need OCR): {page_ranges(unread_scans)}")
    notes: dict[str, list[int]] = {}
    for page in pages:
        if page.note:
            notes.setdefault(page.note, []).append(page.number)
    warnings += [f"{note}: page{'s' if len(numbers) > 1 else ''} {page_ranges(numbers)}"
                 for note, numbers in notes.items()]
    engines = [p.engine for p in pages if p.engine and not p.failed]
    order = ("pdfium", "pdfminer", "tesseract")
    engine = "+".join(name for name in order if name in engines)
    ocr_pages = tuple(p.number for p in pages if p.engine == "tesseract")
    return Assembled(text=body, pages=count, engine=engine, ocr_pages=ocr_pages,
                     warnings=warnings, removed=removed)


def page_count_hint(data: bytes) -> int:
    """A cheap guess at a PDF's page count from its bytes (no parsing; 0 if unknown).

    Counts page objects written in the clear; pages inside compressed object streams
    are not seen. Used only to decide whether to split a document across workers.
    """
    count = data.count(b"/Type/Page") - data.count(b"/Type/Pages")
    count += data.count(b"/Type /Page") - data.count(b"/Type /Pages")
    return max(count, 0)
