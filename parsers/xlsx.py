"""Excel 2007+ (XLSX) cell text with lxml: one line per row, cells separated by tabs.

Each sheet starts with a ``Sheet: <name>`` line. Shared strings, inline strings,
formula results and numbers are read as stored (no number formatting); empty
columns inside a row are kept as empty cells so columns stay aligned.
"""

from __future__ import annotations

import posixpath
import re
from typing import TYPE_CHECKING

from lxml import etree

from parsers.errors import CorruptDocument
from parsers.safezip import open_zip, parse_xml, read_member
from parsers.versions import package_parser

if TYPE_CHECKING:
    import zipfile

    from parsers.context import ExtractContext, Extraction

__all__ = ["PARSER", "extract_xlsx"]

PARSER = package_parser("lxml")
_S = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
_COLUMN = re.compile(r"^([A-Z]{1,3})")
_WHAT = "spreadsheet"
_MAX_COLUMNS = 16384


def extract_xlsx(data: bytes, ctx: ExtractContext) -> Extraction:
    """Extract the cell text of every sheet, in workbook order."""
    from parsers.context import Extraction

    with open_zip(data, ctx.limits, _WHAT) as archive:
        names = set(archive.namelist())
        if "xl/workbook.xml" not in names:
            raise CorruptDocument("This spreadsheet is damaged (it has no workbook); please "
                                  "send it again or in another format.")
        shared = _shared_strings(archive) if "xl/sharedStrings.xml" in names else []
        blocks = []
        for title, path in _sheets(archive, names):
            ctx.check_time(f" while reading sheet {title!r}")
            rows = _rows(parse_xml(read_member(archive, path, _WHAT), _WHAT), shared)
            if rows:
                blocks.append(f"Sheet: {title}\n" + "\n".join(rows))
    return Extraction(text="\n\n".join(blocks))


def _shared_strings(archive: zipfile.ZipFile) -> list[str]:
    root = parse_xml(read_member(archive, "xl/sharedStrings.xml", _WHAT), _WHAT)
    return [_string_item(item) for item in root.iter(_S + "si")]


def _string_item(item: etree._Element) -> str:
    # Rich text runs hold several t elements; phonetic runs (rPh) are not content.
    texts = []
    for t in item.iter(_S + "t"):
        parent = t.getparent()
        if parent is not None and parent.tag != _S + "rPh":
            texts.append(t.text or "")
    return "".join(texts)


def _sheets(archive: zipfile.ZipFile, names: set[str]) -> list[tuple[str, str]]:
    workbook = parse_xml(read_member(archive, "xl/workbook.xml", _WHAT), _WHAT)
    targets: dict[str, str] = {}
    if "xl/_rels/workbook.xml.rels" in names:
        rels = parse_xml(read_member(archive, "xl/_rels/workbook.xml.rels", _WHAT), _WHAT)
        for rel in rels.iter(_REL):
            target = rel.get("Target", "")
            path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(
                posixpath.join("xl", target))
            targets[rel.get("Id", "")] = path
    sheets = []
    for number, sheet in enumerate(workbook.iter(_S + "sheet"), 1):
        path = targets.get(sheet.get(_R, ""), f"xl/worksheets/sheet{number}.xml")
        if path in names:
            sheets.append((sheet.get("name", f"Sheet{number}"), path))
    return sheets


def _rows(sheet: etree._Element, shared: list[str]) -> list[str]:
    rows = []
    for row in sheet.iter(_S + "row"):
        cells: list[str] = []
        for cell in row.iter(_S + "c"):
            column = _column_index(cell.get("r", ""))
            if column is not None and column > len(cells) and column < _MAX_COLUMNS:
                cells.extend([""] * (column - len(cells)))
            cells.append(_cell_text(cell, shared))
        while cells and not cells[-1]:
            cells.pop()
        if cells:
            rows.append("\t".join(" ".join(c.split()) for c in cells))
    return rows


def _column_index(reference: str) -> int | None:
    match = _COLUMN.match(reference)
    if not match:
        return None
    index = 0
    for letter in match.group(1):
        index = index * 26 + ord(letter) - 64
    return index - 1


def _cell_text(cell: etree._Element, shared: list[str]) -> str:
    kind = cell.get("t", "n")
    if kind == "inlineStr":
        inline = cell.find(_S + "is")
        return _string_item(inline) if inline is not None else ""
    value = cell.findtext(_S + "v") or ""
    if kind == "s":
        try:
            return shared[int(value)]
        except (ValueError, IndexError):
            return ""
    if kind == "b":
        return "TRUE" if value == "1" else "FALSE"
    return value
