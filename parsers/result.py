"""The contract every extractor shares: statuses, limits and the result value.

Pure module: no I/O. ``intake`` and ``store`` depend on these names; keep them stable.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = ["MB", "ExtractResult", "Limits", "ParseStatus"]

# One megabyte, everywhere a setting or a message says "MB".
MB = 1024 * 1024


class ParseStatus(enum.StrEnum):
    """How the extraction of one file ended."""

    OK = "ok"
    EMPTY = "empty"
    NEEDS_OCR = "needs_ocr"
    GARBLED = "garbled"
    ENCRYPTED = "encrypted"
    CORRUPT = "corrupt"
    UNSUPPORTED = "unsupported"
    TOO_LARGE = "too_large"
    TIMEOUT = "timeout"
    FAILED = "failed"

    @property
    def readable(self) -> bool:
        """True when staff got usable text from the file."""
        return self is ParseStatus.OK


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits and reading choices for one file (``[limits]``, ``[ocr]``,
    ``[extraction]``).

    These defaults are the only definition: ``intake.config.ExtractionSettings``
    takes its defaults for the same keys from here.
    """

    parse_timeout_s: float = 60.0
    parse_memory_mb: int = 1024
    max_attachment_mb: float = 25.0
    max_archive_members: int = 200
    max_nesting_depth: int = 10
    max_inflate_ratio: float = 100.0
    max_inflated_mb: float = 200.0
    max_text_chars: int = 5_000_000
    max_pages: int = 2_000
    ocr_enabled: bool = False
    ocr_languages: str = "eng"
    ocr_page_timeout_s: float = 30.0
    pdf_engine: str = "auto"  # auto | pdfium | pdfminer (parsers.pdf)


@dataclass(frozen=True, slots=True)
class ExtractResult:
    """What extraction made of one file. ``message`` is one line written for a person."""

    status: ParseStatus
    text: str = ""
    message: str = ""
    detected_type: str = "application/octet-stream"
    parser: str = ""
    pages: int | None = None
    parts: tuple[ExtractResult, ...] = field(default=())
    name: str | None = None
    declared_type: str | None = None
    parser_version: str = ""
    warnings: tuple[str, ...] = field(default=())
    elapsed_s: float = 0.0
    engine: str = ""  # for PDFs: pdfium, pdfminer, tesseract, or several joined by "+"
    ocr_pages: tuple[int, ...] = field(default=())  # pages whose text came from OCR
