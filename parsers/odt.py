"""OpenDocument text (ODT, and the text of ODS/ODP) from content.xml with lxml.

Reads headers and footers from styles.xml, then the body of content.xml in document
order: paragraphs and headings, lists, tables (rows on lines, cells separated by
tabs), frames and text boxes, footnotes after their paragraph. Tracked deletions
(``text:tracked-changes``) and annotations are skipped. An encrypted package
(``manifest:encryption-data`` in the manifest) is ``encrypted``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from lxml import etree

from parsers.errors import CorruptDocument, EncryptedDocument
from parsers.safezip import open_zip, parse_xml, read_member
from parsers.textnorm import join_blocks
from parsers.versions import package_parser

if TYPE_CHECKING:
    from parsers.context import ExtractContext, Extraction

__all__ = ["PARSER", "extract_odt"]

PARSER = package_parser("lxml")
_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_TABLE = "{urn:oasis:names:tc:opendocument:xmlns:table:1.0}"
_OFFICE = "{urn:oasis:names:tc:opendocument:xmlns:office:1.0}"
_STYLE = "{urn:oasis:names:tc:opendocument:xmlns:style:1.0}"
_MANIFEST = "{urn:oasis:names:tc:opendocument:xmlns:manifest:1.0}"
_PARAGRAPHS = {_TEXT + "p", _TEXT + "h"}
_SKIP = {_TEXT + "tracked-changes", _OFFICE + "annotation", _OFFICE + "annotation-end",
         _TEXT + "note-citation", _TEXT + "sequence-decls", _TEXT + "variable-decls",
         _TABLE + "table-columns", _TABLE + "table-column", _OFFICE + "forms",
         _TEXT + "bookmark-ref", _OFFICE + "scripts", _OFFICE + "font-face-decls"}
_WHAT = "OpenDocument file"
_SPACES = re.compile(r"[ \t\r\n]+")


def extract_odt(data: bytes, ctx: ExtractContext) -> Extraction:
    """Extract the text of an OpenDocument package."""
    from parsers.context import Extraction

    with open_zip(data, ctx.limits, _WHAT) as archive:
        names = set(archive.namelist())
        if "META-INF/manifest.xml" in names:
            manifest = read_member(archive, "META-INF/manifest.xml", _WHAT)
            if b"encryption-data" in manifest:
                raise EncryptedDocument(
                    "This OpenDocument file is password-protected; please send a copy "
                    "without a password.")
        if "content.xml" not in names:
            raise CorruptDocument(
                "This OpenDocument file is damaged (it has no content); please send it "
                "again or in another format.")
        content = parse_xml(read_member(archive, "content.xml", _WHAT), _WHAT)
        styles = None
        if "styles.xml" in names:
            styles = parse_xml(read_member(archive, "styles.xml", _WHAT), _WHAT)
    blocks: list[str] = []
    headers: list[str] = []
    footers: list[str] = []
    if styles is not None:
        headers = _unique(odf_blocks(e) for e in styles.iter(_STYLE + "header"))
        footers = _unique(odf_blocks(e) for e in styles.iter(_STYLE + "footer"))
    for body in content.iter(_OFFICE + "body"):
        blocks.extend(odf_blocks(body))
    return Extraction(text=join_blocks(headers + blocks + footers))


def _unique(groups: Iterable[list[str]]) -> list[str]:
    seen: list[str] = []
    for group in groups:
        text = join_blocks(group)
        if text and text not in seen:
            seen.append(text)
    return seen


def odf_blocks(container: etree._Element) -> list[str]:
    """Paragraphs and tables under ``container`` in document order."""
    blocks: list[str] = []
    for child in container:
        tag = child.tag
        if tag in _PARAGRAPHS:
            inline: list[str] = []
            extra: list[str] = []
            _inline(child, inline, extra)
            blocks.append("".join(inline))
            blocks.extend(extra)
        elif tag == _TABLE + "table":
            blocks.append(_table(child))
        elif isinstance(tag, str) and tag not in _SKIP:
            blocks.extend(odf_blocks(child))
    return blocks


def _inline(element: etree._Element, out: list[str], extra: list[str]) -> None:
    # ODF collapses white space in text like HTML; text:s carries deliberate spaces.
    if element.text:
        out.append(_SPACES.sub(" ", element.text))
    for child in element:
        tag = child.tag
        if tag == _TEXT + "s":
            out.append(" " * _count(child.get(_TEXT + "c")))
        elif tag == _TEXT + "tab":
            out.append("\t")
        elif tag == _TEXT + "line-break":
            out.append("\n")
        elif tag == _TEXT + "note":
            for body in child.iter(_TEXT + "note-body"):
                extra.extend(odf_blocks(body))
        elif tag in _SKIP or not isinstance(tag, str):
            pass
        elif any(True for _ in child.iter(*_PARAGRAPHS)) and tag not in _PARAGRAPHS:
            extra.extend(odf_blocks(child))  # frame or text box holding paragraphs
        else:
            _inline(child, out, extra)
        if child.tail:
            out.append(_SPACES.sub(" ", child.tail))


def _count(value: str | None) -> int:
    try:
        return max(1, min(int(value or "1"), 1000))
    except ValueError:
        return 1


def _table(table: etree._Element) -> str:
    rows: list[str] = []
    for row in table.iter(_TABLE + "table-row"):
        if next(row.iterancestors(_TABLE + "table"), None) is not table:
            continue  # a row of a nested table: part of its cell's text
        cells = []
        for cell in row:
            if cell.tag not in (_TABLE + "table-cell", _TABLE + "covered-table-cell"):
                continue
            text = " ".join(" ".join(b.split()) for b in odf_blocks(cell) if b.strip())
            repeat = _count(cell.get(_TABLE + "number-columns-repeated"))
            cells.extend([text] * (repeat if text else 1))
        while cells and not cells[-1]:
            cells.pop()
        if cells:
            rows.append("\t".join(cells))
    return "\n".join(rows)
