"""ZIP archives: every member extracted recursively through the registry, bounded.

The archive is opened with decompression-bomb checks (:mod:`parsers.safezip`);
the registry bounds the number of members and the nesting depth. Folders,
macOS resource forks (``__MACOSX/``, ``._*``) and empty members are skipped;
encrypted members get status ``encrypted``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parsers.errors import CorruptDocument, EncryptedDocument, ParseError
from parsers.result import ExtractResult
from parsers.safezip import open_zip, read_member
from parsers.versions import stdlib_parser

if TYPE_CHECKING:
    from parsers.context import ExtractContext, Extraction

__all__ = ["PARSER", "extract_zip"]

PARSER = stdlib_parser("zipfile")
_WHAT = "ZIP archive"


def extract_zip(data: bytes, ctx: ExtractContext) -> Extraction:
    """Extract each file inside a ZIP archive as a part."""
    from parsers.context import Extraction

    found = Extraction()
    with open_zip(data, ctx.limits, _WHAT) as archive:
        for info in archive.infolist():
            name = info.filename
            base = name.rsplit("/", 1)[-1]
            if info.is_dir() or name.startswith("__MACOSX/") or base.startswith("._"):
                continue
            ctx.check_time(" while reading the archive's files")
            if ctx.budget[0] <= 0:
                found.warnings.append("more files than allowed; the rest were skipped")
                break
            if info.flag_bits & 0x1:
                error: ParseError = EncryptedDocument(
                    "This file inside the ZIP archive is password-protected; please send "
                    "it without a password.")
                found.parts.append(ExtractResult(status=error.status, message=error.message,
                                                 name=name))
                continue
            try:
                member = read_member(archive, name, _WHAT)
            except CorruptDocument as exc:
                found.parts.append(ExtractResult(status=exc.status, message=exc.message,
                                                 name=name))
                continue
            found.parts.append(ctx.child(member, name, None))
    return found
