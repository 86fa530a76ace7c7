"""What an extractor found, made into the :class:`ExtractResult` a caller sees.

Shared by :mod:`parsers.registry` (every format) and :mod:`parsers.pdf` (a PDF read in
shares by several workers is finished here after its shares are joined); it imports
neither, so the formats and the registry do not import each other.
"""

from __future__ import annotations

import time

from parsers.context import ExtractContext, Extraction
from parsers.result import ExtractResult, Limits, ParseStatus
from parsers.textnorm import garbage_ratio, normalize_text, strip_placeholders
from parsers.versions import Parser

__all__ = ["finish", "finish_in"]

_GARBLED_RATIO = 0.3  # more undecodable characters than this: the text is garbled


def finish(found: Extraction, detected: str, parser: Parser, limits: Limits, started: float,
           filename: str | None, declared_type: str | None) -> ExtractResult:
    """The result for text an extractor found outside :func:`extract` (split PDFs)."""
    return finish_in(found, detected, parser, ExtractContext(limits), started, filename,
                     declared_type)


def finish_in(found: Extraction, detected: str, parser: Parser, ctx: ExtractContext,
              started: float, filename: str | None, declared_type: str | None) -> ExtractResult:
    """The result for the text ``found`` by ``parser``: normalised, cut to the limit,
    judged (garbled, empty, or how many enclosed parts were read) and labelled."""
    body = normalize_text(found.text)
    warnings = list(found.warnings)
    status = ParseStatus.OK
    ratio = garbage_ratio(body)
    if ratio > 0:
        body = normalize_text(strip_placeholders(body))
        warnings.append(f"{ratio:.0%} of the characters could not be decoded and were dropped")
    if len(body) > ctx.limits.max_text_chars:
        body = body[: ctx.limits.max_text_chars]
        warnings.append(f"text cut at {ctx.limits.max_text_chars:,} characters")
    pages = found.pages
    of_pages = f" from {pages} page{'s' if pages != 1 else ''}" if pages else ""
    message = f"Extracted {len(body):,} characters{of_pages}."
    parts = tuple(found.parts)
    if ratio > _GARBLED_RATIO:
        status = ParseStatus.GARBLED
        message = ("The text in this file could not be decoded (its fonts lack character "
                   "maps); please send it in another format, such as Word.")
    elif not body and not any(p.status is ParseStatus.OK for p in parts):
        if parts:
            first = parts[0]
            status = first.status
            message = f"Nothing readable inside; {first.name or 'the first part'}: {first.message}"
        else:
            status, message = ParseStatus.EMPTY, "This file contains no text."
    elif parts:
        readable = sum(1 for p in parts if p.status is ParseStatus.OK)
        message = (f"Extracted {len(body):,} characters and {readable} of {len(parts)} "
                   "attached or enclosed files.")
    combined = _combine(found.header, body, parts)
    return ExtractResult(
        status=status, text=combined, message=message, detected_type=detected,
        parser=parser.name, parser_version=parser.version, pages=pages, parts=parts,
        name=filename, declared_type=declared_type, warnings=tuple(warnings),
        elapsed_s=time.monotonic() - started, engine=found.engine, ocr_pages=found.ocr_pages,
    )


def _combine(header: str, body: str, parts: tuple[ExtractResult, ...]) -> str:
    blocks = [normalize_text(header), body]
    for number, part in enumerate(parts, 1):
        label = part.name or f"part {number}"
        if part.status is ParseStatus.OK:
            blocks.append(f"----- {label} -----\n{part.text}")
        else:
            blocks.append(f"----- {label} [{part.status.value}: {part.message}] -----")
    return "\n\n".join(block for block in blocks if block)
