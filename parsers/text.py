"""Plain text files in any charset, decoded by :func:`parsers.charset.decode_text`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parsers.charset import decode_text
from parsers.versions import package_parser

if TYPE_CHECKING:
    from parsers.context import ExtractContext

__all__ = ["PARSER", "extract_text"]

PARSER = package_parser("charset-normalizer")


def extract_text(data: bytes, ctx: ExtractContext) -> str:
    """Extract a plain-text file: decode it."""
    return decode_text(data)
