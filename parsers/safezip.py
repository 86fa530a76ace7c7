"""Open ZIP containers (DOCX, ODT, XLSX, plain .zip) with decompression-bomb checks.

The central directory declares every member's inflated size before anything is
inflated, so a bomb is refused from the directory alone. :class:`zipfile.ZipExtFile`
never returns more than the declared size (it checks the CRC at the declared end),
so a member that lies about its size cannot inflate past the checked figure.
XML parts are parsed with :data:`SAFE_XML_PARSER`: no DTD loading, no entity
resolution, no network.
"""

from __future__ import annotations

import io
import zipfile
import zlib

from lxml import etree

from parsers.errors import CorruptDocument, EncryptedDocument, TooLarge
from parsers.result import MB, Limits

__all__ = ["SAFE_XML_PARSER", "open_zip", "parse_xml", "read_member"]

SAFE_XML_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
)
# Ratios only mean something for members big enough to matter: a 40 KB XML part
# compressed 150:1 is normal, a 1 GiB one compressed 962:1 is a bomb.
_RATIO_FLOOR_BYTES = 2 * MB
_MB = MB


def open_zip(data: bytes, limits: Limits, what: str = "file") -> zipfile.ZipFile:
    """Open ``data`` as a ZIP after checking declared sizes against ``limits``.

    Raises:
        CorruptDocument: not a readable ZIP.
        TooLarge: total or per-member inflated size, or compression ratio, too big.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise CorruptDocument(
            f"This {what} is damaged (not a readable ZIP package) and could not be read; "
            "please send it again or in another format."
        ) from exc
    total = 0
    for info in infos:
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _RATIO_FLOOR_BYTES and ratio > limits.max_inflate_ratio:
            raise TooLarge(
                f"This {what} looks like a decompression bomb ({info.filename!r} would "
                f"inflate {ratio:,.0f} times) and was not opened."
            )
    if total > limits.max_inflated_mb * _MB:
        raise TooLarge(
            f"This {what} would inflate to {total / _MB:,.0f} MB, over the "
            f"{limits.max_inflated_mb:,.0f} MB limit, and was not opened."
        )
    return archive


def read_member(archive: zipfile.ZipFile, name: str, what: str = "file") -> bytes:
    """Read one member, converting ZIP and inflate errors to :class:`CorruptDocument`."""
    try:
        return archive.read(name)
    except KeyError:
        raise
    except RuntimeError as exc:  # zipfile's "encrypted, password required"
        raise EncryptedDocument(
            f"This {what} is password-protected; please send a copy without a password."
        ) from exc
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError,
            NotImplementedError) as exc:
        raise CorruptDocument(
            f"This {what} is damaged ({name!r} cannot be unpacked); please send it again "
            "or in another format."
        ) from exc


def parse_xml(data: bytes, what: str = "file") -> etree._Element:
    """Parse an XML part safely (no external entities, no DTD, no network)."""
    try:
        return etree.fromstring(data, SAFE_XML_PARSER)
    except etree.XMLSyntaxError as exc:
        raise CorruptDocument(
            f"This {what} is damaged (its XML is malformed); please send it again or in "
            "another format."
        ) from exc
