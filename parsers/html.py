"""HTML to readable text: scripts and styles dropped, blocks become line breaks.

Used for HTML attachments and for HTML email bodies. Parsing is lxml's HTML parser
with no network access; entities are decoded by the parser. Whitespace inside text
is collapsed as a browser would (except in ``<pre>``); block elements become
paragraph breaks, list items and table rows become lines, table cells are
separated by tabs.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import lxml.html
from lxml import etree

from parsers.charset import decode_text
from parsers.textnorm import normalize_text
from parsers.versions import package_parser

if TYPE_CHECKING:
    from parsers.context import ExtractContext

__all__ = ["PARSER", "decode_html", "extract_html", "html_to_text"]

PARSER = package_parser("lxml")
_DROP = {"script", "style", "head", "title", "noscript", "template", "iframe", "object",
         "svg", "canvas", "select", "button"}
_PARAGRAPH = {"p", "div", "section", "article", "header", "footer", "main", "aside", "nav",
              "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl",
              "table", "form", "fieldset", "figure", "address", "hr", "body", "center"}
_LINE = {"li", "tr", "dt", "dd", "caption", "figcaption", "option"}
_CELL = {"td", "th"}
_SPACES = re.compile(r"[ \t\r\n\f\v]+")
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*>", re.IGNORECASE)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""",
                           re.IGNORECASE)
_PARSER = lxml.html.HTMLParser(no_network=True, remove_comments=True, remove_pis=True,
                               recover=True)
_LINE_BREAK = "\x00"  # placeholders for structural breaks, resolved at the end
_PARA_BREAK = "\x01"
_BREAKS = re.compile("([^\x00\x01]*)([\x00\x01]*)")


def html_to_text(html: str) -> str:
    """Return the readable text of an HTML document or fragment."""
    html = _XML_DECLARATION.sub("", html.replace("\x00", "").replace("\x01", ""))
    if not html.strip():
        return ""
    try:
        root = lxml.html.document_fromstring(html, parser=_PARSER)
    except (etree.ParserError, ValueError):
        return normalize_text(re.sub(r"<[^>]*>", " ", html))
    out: list[str] = []
    _walk(root, out, preformatted=False)
    text = "".join(out)
    # A run of structural breaks is a paragraph break if any block ended or
    # started in it, else a line break (list items, table rows).
    joined = []
    for match in _BREAKS.finditer(text):
        segment, breaks = match.groups()
        cleaned = "\n".join(p.strip(" ") for p in segment.split("\n")).strip(" ")
        joined.append(cleaned.rstrip("\t") if breaks else cleaned)
        joined.append("\n\n" if _PARA_BREAK in breaks else "\n" if breaks else "")
    return normalize_text("".join(joined))


def _walk(element: etree._Element, out: list[str], preformatted: bool) -> None:
    tag = element.tag if isinstance(element.tag, str) else ""
    tag = tag.lower()
    if tag in _DROP or not isinstance(element.tag, str):
        _text(element.tail, out, preformatted)
        return
    pre = preformatted or tag == "pre"
    if tag in _PARAGRAPH:
        out.append(_PARA_BREAK)
    elif tag in _LINE:
        out.append(_LINE_BREAK)
    elif tag == "br":
        out.append("\n")
    _text(element.text, out, pre)
    for child in element:
        _walk(child, out, pre)
    if tag in _PARAGRAPH:
        out.append(_PARA_BREAK)
    elif tag in _LINE:
        out.append(_LINE_BREAK)
    elif tag in _CELL:
        out.append("\t")
    _text(element.tail, out, preformatted)


def _text(value: str | None, out: list[str], preformatted: bool) -> None:
    if value:
        out.append(value if preformatted else _SPACES.sub(" ", value))


def decode_html(data: bytes) -> str:
    """Decode HTML bytes: BOM, then a ``<meta charset>``, then detection."""
    match = _META_CHARSET.search(data[:4096])
    return decode_text(data, match.group(1).decode("ascii") if match else None)


def extract_html(data: bytes, ctx: ExtractContext) -> str:
    """Extract an HTML file's readable text."""
    return html_to_text(decode_html(data))
