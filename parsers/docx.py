"""Word 2007+ (DOCX, DOCM, DOTX, DOTM) text by walking python-docx's element tree.

python-docx's ``paragraph.text`` drops runs inside tracked insertions (``w:ins``)
and never sees text boxes, so this module walks the XML of each part that
python-docx loaded: body paragraphs and tables in document order, text boxes,
tracked insertions (deletions and moved-away text are skipped), headers, footers,
footnotes, endnotes and HTML ``altChunk`` parts. Text boxes are stored twice, in
``mc:Choice`` and again in ``mc:Fallback``: only the choice is read.

The package is opened with :func:`parsers.safezip.open_zip` first, so a
decompression bomb is refused from its declared sizes before anything inflates;
python-docx's XML parser does not resolve entities.
"""

from __future__ import annotations

import io
import zipfile
from typing import TYPE_CHECKING

from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.opc.exceptions import PackageNotFoundError
from docx.oxml.parser import parse_xml
from docx.package import Package
from lxml import etree

from parsers.errors import CorruptDocument, EncryptedDocument
from parsers.safezip import open_zip
from parsers.textnorm import join_blocks
from parsers.versions import package_parser

if TYPE_CHECKING:
    from docx.opc.part import Part

    from parsers.context import ExtractContext, Extraction

__all__ = ["PARSER", "extract_docx", "extract_encrypted_ooxml", "word_blocks"]

PARSER = package_parser("python-docx")
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
_R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_P, _TBL, _TR, _TC, _T = _W + "p", _W + "tbl", _W + "tr", _W + "tc", _W + "t"
_TXBX = _W + "txbxContent"
_ALT, _CHOICE, _FALLBACK = _MC + "AlternateContent", _MC + "Choice", _MC + "Fallback"
_BREAKS = {_W + "br", _W + "cr"}
_TABS = {_W + "tab", _W + "ptab"}
# Deleted or moved-away text, field instructions, phonetic guides, properties.
_SKIP = {_W + n for n in ("del", "moveFrom", "delText", "delInstrText", "instrText", "rt",
                          "rPr", "pPr", "tblPr", "trPr", "tcPr", "sectPr", "fldData",
                          "footnoteReference", "endnoteReference", "commentReference")}
_SKIP.add(_FALLBACK)
_NOTE_TYPES = {RT.FOOTNOTES, RT.ENDNOTES}
_CORRUPT = ("This Word document is damaged and could not be read; please send it again or "
            "save it as a new file.")


def extract_docx(data: bytes, ctx: ExtractContext) -> Extraction:
    """Extract a Word 2007+ document: headers, body, notes, footers."""
    from parsers import html
    from parsers.context import Extraction

    open_zip(data, ctx.limits, "Word document").close()
    try:
        package = Package.open(io.BytesIO(data))
        main = package.main_document_part
        body_xml = _element(main)
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, EOFError,
            OSError, etree.XMLSyntaxError, AttributeError, TypeError, NotImplementedError
            ) as exc:
        raise CorruptDocument(_CORRUPT) from exc
    headers: list[str] = []
    notes: list[str] = []
    footers: list[str] = []
    chunks: dict[str, str] = {}
    for rel_id, rel in main.rels.items():
        if rel.is_external:
            continue
        try:
            part = rel.target_part
            if rel.reltype in (RT.HEADER, RT.FOOTER) or rel.reltype in _NOTE_TYPES:
                text = join_blocks(word_blocks(_element(part)))
                target = {RT.HEADER: headers, RT.FOOTER: footers}.get(rel.reltype, notes)
                if text and text not in target:
                    target.append(text)
            elif rel.reltype == RT.A_F_CHUNK:
                chunks[rel_id] = html.html_to_text(html.decode_html(part.blob))
        except (KeyError, ValueError, etree.XMLSyntaxError) as exc:
            raise CorruptDocument(_CORRUPT) from exc
    body = word_blocks(body_xml, chunks)
    return Extraction(text=join_blocks(headers + body + notes + footers))


def extract_encrypted_ooxml(data: bytes, ctx: ExtractContext) -> Extraction:
    """An Office file wrapped in an encrypted OLE2 package: always needs a password."""
    raise EncryptedDocument(
        "This Office document is password-protected; please send a copy without a "
        "password.")


def _element(part: Part) -> etree._Element:
    element = getattr(part, "element", None)
    if element is None:
        element = getattr(part, "_element", None)
    if element is None:
        element = parse_xml(part.blob)
    return element


def word_blocks(root: etree._Element, chunks: dict[str, str] | None = None) -> list[str]:
    """Paragraphs and tables under ``root`` in document order, one string each."""
    blocks: list[str] = []
    _collect_blocks(root, blocks, chunks or {})
    return blocks


def _collect_blocks(container: etree._Element, blocks: list[str], chunks: dict[str, str]
                    ) -> None:
    for child in container:
        tag = child.tag
        if tag == _P:
            inline: list[str] = []
            boxes: list[str] = []
            _collect_inline(child, inline, boxes)
            blocks.append("".join(inline))
            blocks.extend(boxes)
        elif tag == _TBL:
            blocks.append(_table_text(child))
        elif tag == _W + "altChunk":
            blocks.append(chunks.get(child.get(_R_ID, ""), ""))
        elif tag == _ALT:
            _collect_blocks(_choice(child), blocks, chunks)
        elif isinstance(tag, str) and tag not in _SKIP:
            _collect_blocks(child, blocks, chunks)  # sdt, sdtContent, customXml, ins...


def _collect_inline(element: etree._Element, out: list[str], boxes: list[str]) -> None:
    for child in element:
        tag = child.tag
        if tag == _T:
            out.append(child.text or "")
        elif tag in _TABS:
            out.append("\t")
        elif tag in _BREAKS:
            out.append("\n")
        elif tag == _W + "noBreakHyphen":
            out.append("-")
        elif tag == _TXBX:
            boxes.extend(word_blocks(child))
        elif tag == _ALT:
            _collect_inline(_choice(child), out, boxes)
        elif isinstance(tag, str) and tag not in _SKIP:
            _collect_inline(child, out, boxes)


def _choice(alternate: etree._Element) -> etree._Element:
    """The first mc:Choice (text boxes are repeated in mc:Fallback)."""
    for child in alternate:
        if child.tag == _CHOICE:
            return child
    for child in alternate:
        if child.tag == _FALLBACK:
            return child
    return alternate


def _table_text(table: etree._Element) -> str:
    rows: list[str] = []
    for row in table.iter(_TR):
        if _nearest_table(row) is not table:
            continue
        cells = []
        for cell in row.iter(_TC):
            if _nearest_table(cell) is not table:
                continue
            parts = word_blocks(cell)
            cells.append(" ".join(" ".join(p.split()) for p in parts if p.strip()))
        if any(cells):
            rows.append("\t".join(cells))
    return "\n".join(rows)


def _nearest_table(element: etree._Element) -> etree._Element | None:
    parent = element.getparent()
    while parent is not None and parent.tag != _TBL:
        parent = parent.getparent()
    return parent
