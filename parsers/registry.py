"""Map detected types to extractors and turn their outcome into an ExtractResult.

An extractor is a function ``(data: bytes, ctx: ExtractContext) -> Extraction`` (or
``str``) that raises :class:`~parsers.errors.ParseError` subclasses. This module is
the one place that enforces the size, nesting, member-count, text-length and time
limits, normalises text, judges garbled output and writes the human messages for
outcomes. :func:`extract` never raises for bad input: a catch-all here turns any
unexpected exception into status ``failed``, so one hostile file cannot take a
worker down. Containers (zip, email, msg, tnef) call :meth:`ExtractContext.child`
to recurse through the same code. The context and result types live in
:mod:`parsers.context`, so the format modules never import this module.
"""

from __future__ import annotations

import time

from parsers import (
    archive,
    detect,
    doc,
    docx,
    email,
    html,
    image,
    ocr,
    odt,
    pdf,
    rtf,
    text,
    tnef,
    xlsx,
)
from parsers.context import ExtractContext, Extraction, Extractor
from parsers.errors import NeedsOcr, NestingTooDeep, ParseError, TooLarge
from parsers.outcome import finish, finish_in
from parsers.result import MB, ExtractResult, Limits, ParseStatus
from parsers.versions import Parser

__all__ = ["ExtractContext", "Extraction", "extract", "extractor_for", "finish"]

_MB = MB
DEFAULT_LIMITS = Limits()


_OOXML_WORD = (detect.DOCX, detect.DOCM, detect.DOTX, detect.DOTM)
_EXTRACTORS: dict[str, tuple[Extractor, Parser]] = {
    detect.PDF: (pdf.extract_pdf, pdf.PARSER),
    **{mime: (docx.extract_docx, docx.PARSER) for mime in _OOXML_WORD},
    detect.ENCRYPTED_OOXML: (docx.extract_encrypted_ooxml, docx.PARSER),
    detect.ODT: (odt.extract_odt, odt.PARSER),
    detect.XLSX: (xlsx.extract_xlsx, xlsx.PARSER),
    detect.RTF: (rtf.extract_rtf, rtf.PARSER),
    detect.DOC: (doc.extract_doc, doc.PARSER),
    detect.HTML: (html.extract_html, html.PARSER),
    "application/xhtml+xml": (html.extract_html, html.PARSER),
    detect.TEXT: (text.extract_text, text.PARSER),
    detect.EML: (email.extract_eml, email.EML_PARSER),
    detect.MSG: (email.extract_msg, email.MSG_PARSER),
    detect.TNEF: (tnef.extract_tnef, tnef.PARSER),
    "application/ms-tnef": (tnef.extract_tnef, tnef.PARSER),
    detect.ZIP: (archive.extract_zip, archive.PARSER),
    **{mime: (image.extract_image, image.PARSER) for mime in image.TYPES},
}


def extractor_for(mime: str) -> tuple[Extractor, Parser] | None:
    """The extractor and parser description registered for ``mime``, if any."""
    return _EXTRACTORS.get(mime)


def extract(data: bytes, *, filename: str | None = None,
            declared_type: str | None = None, limits: Limits = DEFAULT_LIMITS) -> ExtractResult:
    """Extract the text of one file, in this process. Never raises for bad input.

    Args:
        data: the file's bytes.
        filename: the name it was sent under (a fallback hint only).
        declared_type: the MIME type it was sent with (a fallback hint only).
        limits: size, time and nesting limits. The time limit is checked between
            pages and members here; only :class:`parsers.ExtractionPool` enforces it
            by force.

    Returns:
        An :class:`ExtractResult` whose ``status`` and one-line ``message`` say
        what happened.
    """
    ctx = ExtractContext(
        limits=limits,
        deadline=time.monotonic() + limits.parse_timeout_s,
        budget=[limits.max_archive_members],
        recurse=_extract_with,
    )
    return _extract_with(data, filename, declared_type, ctx)


def _extract_with(data: bytes, filename: str | None, declared_type: str | None,
                  ctx: ExtractContext) -> ExtractResult:
    started = time.monotonic()
    detected = detect.OCTET
    parser = Parser("", "")
    try:
        size_mb = len(data) / _MB
        if size_mb > ctx.limits.max_attachment_mb:
            raise TooLarge(
                f"This file is {size_mb:,.1f} MB, over the {ctx.limits.max_attachment_mb:g} MB "
                "limit; please send a smaller file or split it."
            )
        if ctx.depth > ctx.limits.max_nesting_depth:
            raise NestingTooDeep(
                f"This file is nested more than {ctx.limits.max_nesting_depth} levels deep "
                "inside archives or emails and was not opened."
            )
        if not data:
            return ExtractResult(status=ParseStatus.EMPTY, message="This file is empty (0 bytes).",
                                 name=filename, declared_type=declared_type)
        detected = detect.detect_type(data, filename, declared_type)
        entry = _EXTRACTORS.get(detected)
        if entry is None:
            return _unsupported(detected, filename, declared_type, started)
        function, parser = entry
        try:
            outcome = function(data, ctx)
        except NeedsOcr as exc:
            # PDFs OCR their own image-only pages (parsers.pdf); this is for pictures.
            if not ctx.limits.ocr_enabled or not ocr.available() or detected == detect.PDF:
                raise
            outcome, parser = ocr.recognize(data, detected, ctx, exc), ocr.PARSER
        found = outcome if isinstance(outcome, Extraction) else Extraction(text=outcome)
        parser = found.parser or parser
        return finish_in(found, detected, parser, ctx, started, filename, declared_type)
    except ParseError as exc:
        status, message, pages = exc.status, exc.message, exc.pages
    except MemoryError:
        status = ParseStatus.TOO_LARGE
        message = (f"Reading this file needed more than the {ctx.limits.parse_memory_mb} MB "
                   "of memory allowed; please send a smaller file.")
        pages = None
    except RecursionError:
        status, pages = ParseStatus.CORRUPT, None
        message = "This file's structure is nested too deeply to read; it may be damaged."
    except Exception as exc:  # noqa: BLE001 - one hostile file must never crash the worker
        status, pages = ParseStatus.FAILED, None
        message = (f"Reading this file failed unexpectedly ({type(exc).__name__}); "
                   "staff will look at it by hand.")
    return ExtractResult(
        status=status, message=message, detected_type=detected, parser=parser.name,
        parser_version=parser.version, pages=pages, elapsed_s=time.monotonic() - started,
        name=filename, declared_type=declared_type,
    )


def _unsupported(detected: str, filename: str | None, declared_type: str | None,
                 started: float) -> ExtractResult:
    what = "this kind of file" if detected == detect.OCTET else f"files of type {detected}"
    return ExtractResult(
        status=ParseStatus.UNSUPPORTED, detected_type=detected, name=filename,
        declared_type=declared_type, elapsed_s=time.monotonic() - started,
        message=f"We cannot read {what}; please send it as PDF, Word, OpenDocument, RTF "
        "or plain text.",
    )
