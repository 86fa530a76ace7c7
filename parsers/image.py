"""Images (photos, scans): their text needs OCR, so by default they are needs_ocr."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parsers.errors import NeedsOcr
from parsers.versions import Parser

if TYPE_CHECKING:
    from parsers.context import ExtractContext

__all__ = ["PARSER", "TYPES", "extract_image"]

PARSER = Parser("image", "")
TYPES = ("image/png", "image/jpeg", "image/gif", "image/tiff", "image/bmp", "image/webp")


def extract_image(data: bytes, ctx: ExtractContext) -> str:
    """Pictures have no text layer: raise :class:`NeedsOcr` (the registry may OCR)."""
    raise NeedsOcr(
        "This file is a picture; its text needs OCR (text recognition) before it can be "
        "read. If it is a document, please send it as PDF or Word instead.")
