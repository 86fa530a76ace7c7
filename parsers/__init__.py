"""Text extraction for consultation responses: every file ends with a status and a message.

Public API:

- :func:`extract` runs in this process (pure: bytes in, result out, never raises);
- :class:`ExtractionPool` runs extractions in long-lived worker processes with a
  wall-clock timeout and a memory cap, in parallel on every core;
- :func:`detect_type`, :func:`decode_text` and :func:`html_to_text` are the
  building blocks the email pipeline uses for message bodies.
"""

from __future__ import annotations

from typing import Any

from parsers.detect import detect_type
from parsers.errors import (
    CorruptDocument,
    EmptyDocument,
    EncryptedDocument,
    GarbledText,
    NeedsOcr,
    NestingTooDeep,
    ParseError,
    ParseTimeout,
    TooLarge,
    UnsupportedFormat,
)
from parsers.html import html_to_text
from parsers.pool import ExtractionPool, ExtractJob
from parsers.result import ExtractResult, Limits, ParseStatus
from parsers.text import decode_text

__all__ = [
    "CorruptDocument",
    "EmptyDocument",
    "EncryptedDocument",
    "ExtractJob",
    "ExtractResult",
    "ExtractionPool",
    "GarbledText",
    "Limits",
    "NeedsOcr",
    "NestingTooDeep",
    "ParseError",
    "ParseStatus",
    "ParseTimeout",
    "TooLarge",
    "UnsupportedFormat",
    "decode_text",
    "detect_type",
    "extract",
    "html_to_text",
]


def __getattr__(name: str) -> Any:
    # The extractors (pdfminer, python-docx, ...) load on first use, not on import:
    # the command line's staff commands never extract and start faster without them.
    if name == "extract":
        from parsers.registry import extract

        return extract
    raise AttributeError(f"module 'parsers' has no attribute {name!r}")
