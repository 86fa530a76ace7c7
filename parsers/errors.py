"""Exceptions raised by extractors; the registry turns each into a status.

Every exception carries a one-line message written for a person (an admin, or the
respondent through the acknowledgement), and the :class:`ParseStatus` it maps to::

    ParseError                      status failed (also the catch-all root)
     ├── UnsupportedFormat          unsupported: no extractor for the detected type
     ├── EncryptedDocument          encrypted: needs a password we do not have
     ├── CorruptDocument            corrupt: damaged, truncated or not what it claims
     ├── NeedsOcr                   needs_ocr: only images, no text layer
     ├── EmptyDocument              empty: parsed cleanly but holds no text
     ├── GarbledText                garbled: text exists but cannot be decoded
     ├── TooLarge                   too_large: over a size, page or memory limit
     │    └── NestingTooDeep        too_large: archives or emails nested too deeply
     └── ParseTimeout               timeout: the time budget ran out

Extractors convert third-party exceptions where they enter our code, with
``raise CorruptDocument(...) from exc``.
"""

from __future__ import annotations

from parsers.result import ParseStatus

__all__ = [
    "CorruptDocument",
    "EmptyDocument",
    "EncryptedDocument",
    "GarbledText",
    "NeedsOcr",
    "NestingTooDeep",
    "ParseError",
    "ParseTimeout",
    "TooLarge",
    "UnsupportedFormat",
]


class ParseError(Exception):
    """Root of every extraction error; raised directly for unexpected failures."""

    status: ParseStatus = ParseStatus.FAILED
    default_message = "This file could not be read; staff will look at it by hand."

    def __init__(self, message: str | None = None, *, pages: int | None = None) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.pages = pages


class UnsupportedFormat(ParseError):
    """Raised when no extractor handles the detected type."""

    status = ParseStatus.UNSUPPORTED
    default_message = (
        "This type of file cannot be read; please send it as PDF, Word, OpenDocument, "
        "RTF or plain text."
    )


class EncryptedDocument(ParseError):
    """Raised when the file needs a password (the empty password was tried)."""

    status = ParseStatus.ENCRYPTED
    default_message = (
        "This file is password-protected; please send a copy without a password."
    )


class CorruptDocument(ParseError):
    """Raised when the file is damaged, truncated or not the format it claims."""

    status = ParseStatus.CORRUPT
    default_message = (
        "This file is damaged and could not be read; please send it again or in "
        "another format."
    )


class NeedsOcr(ParseError):
    """Raised when the file holds only images of text (a scan or a photo)."""

    status = ParseStatus.NEEDS_OCR
    default_message = (
        "This file is a scan or picture without a text layer; its text needs OCR "
        "(text recognition) before it can be read."
    )


class EmptyDocument(ParseError):
    """Raised when the file parses cleanly but contains no text."""

    status = ParseStatus.EMPTY
    default_message = "This file contains no text."


class GarbledText(ParseError):
    """Raised when text is present but comes out as placeholders or junk."""

    status = ParseStatus.GARBLED
    default_message = (
        "The text in this file could not be decoded (its fonts lack character maps); "
        "please send it in another format, such as Word."
    )


class TooLarge(ParseError):
    """Raised when a size, page-count, inflation or memory limit is exceeded."""

    status = ParseStatus.TOO_LARGE
    default_message = "This file is too large to read; please send a smaller file."


class NestingTooDeep(TooLarge):
    """Raised when archives or forwarded emails are nested beyond the limit."""

    default_message = (
        "This file is nested too deeply inside other archives or emails to be read."
    )


class ParseTimeout(ParseError):
    """Raised by an extractor that notices its time budget has run out."""

    status = ParseStatus.TIMEOUT
    default_message = (
        "Reading this file took too long and was stopped; staff will look at it by hand."
    )
