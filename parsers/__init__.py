"""Text extraction for consultation responses: every file ends with a status and a message.

Public API:

- :func:`extract` runs in this process (pure: bytes in, result out, never raises);
- :class:`ExtractionPool` runs extractions in long-lived worker processes with a
  wall-clock timeout and a memory cap, in parallel on every core;
- :func:`detect_type`, :func:`decode_text` and :func:`html_to_text` are the
  building blocks the email pipeline uses for message bodies.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from parsers.errors import (  # small, and what callers catch: loaded with the package
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

if TYPE_CHECKING:
    from parsers.charset import decode_text
    from parsers.detect import detect_type
    from parsers.html import html_to_text
    from parsers.pool import ExtractionPool, ExtractJob
    from parsers.registry import extract
    from parsers.result import ExtractResult, Limits, ParseStatus

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


# Where each other public name lives: imported on first use, so a caller pays
# only for what it uses (the command line's staff commands never extract, and
# starting the extraction workers early needs the pool alone).
_HOMES = {
    "detect_type": "parsers.detect",
    "html_to_text": "parsers.html",
    "ExtractionPool": "parsers.pool",
    "ExtractJob": "parsers.pool",
    "extract": "parsers.registry",
    "ExtractResult": "parsers.result",
    "Limits": "parsers.result",
    "ParseStatus": "parsers.result",
    "decode_text": "parsers.charset",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'parsers' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # looked up once
    return value
