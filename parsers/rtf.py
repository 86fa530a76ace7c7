"""RTF to text with a small tokenizer that honours code pages and Unicode escapes.

Handles ``\\ansicpg``, per-font ``\\fcharset`` (so Japanese, Cyrillic or Central
European ``\\'xx`` bytes decode right, including double-byte sequences),
``\\uN`` with its ``\\ucN`` fallback skipping, ``\\binN`` blobs, and skips
destinations that are not text (font and colour tables, pictures, objects, field
instructions, metadata, anything marked ``\\*``). Paragraphs become blank-line
separated blocks; table cells are separated by tabs and rows end lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from parsers.errors import CorruptDocument
from parsers.versions import Parser

if TYPE_CHECKING:
    from parsers.context import ExtractContext

__all__ = ["PARSER", "extract_rtf", "rtf_to_text"]

PARSER = Parser("parsers.rtf", "1")
_TOKEN = re.compile(
    rb"\\([a-zA-Z]{1,32})(-?\d{1,10})? ?|\\'([0-9a-fA-F]{2})|\\(.)|([{}])|[\r\n]+"
    rb"|([^\\{}\r\n]+)", re.DOTALL)
_SKIP_DESTINATIONS = frozenset(
    b"""fonttbl colortbl stylesheet info pict object objdata fldinst themedata
    colorschememapping datastore latentstyles listtable listoverridetable rsidtbl
    generator xmlnstbl mmathPr pgdsctbl filetbl revtbl userprops bkmkstart bkmkend
    annotation atnid atnauthor atndate atnref atntime comment private pntext pntxta
    pntxtb template docvar shppict nonshppict blipuid fontemb fontfile falt panose
    listtext xe tc author operator title subject keywords doccomm company category
    wgrffmtfilter ftnsep ftnsepc aftnsep aftnsepc""".split())
_CHARSET_CODEPAGE = {0: "cp1252", 1: "cp1252", 77: "mac_roman", 128: "cp932", 129: "cp949",
                     130: "johab", 134: "gb18030", 136: "cp950", 161: "cp1253",
                     162: "cp1254", 163: "cp1258", 177: "cp1255", 178: "cp1256",
                     186: "cp1257", 204: "cp1251", 222: "cp874", 238: "cp1250"}
_SYMBOLS = {b"par": "\n\n", b"sect": "\n\n", b"page": "\n\n", b"line": "\n",
            b"tab": "\t", b"cell": "\t", b"nestcell": "\t", b"row": "\n",
            b"nestrow": "\n", b"emdash": "\u2014", b"endash": "\u2013",
            b"bullet": "\u2022", b"lquote": "\u2018", b"rquote": "\u2019",
            b"ldblquote": "\u201c", b"rdblquote": "\u201d", b"emspace": " ",
            b"enspace": " ", b"qmspace": " "}
_MAX_DEPTH = 500


@dataclass(frozen=True)
class _State:
    skip: bool = False
    codepage: str = "cp1252"
    uc: int = 1
    in_fonttbl: bool = False


def rtf_to_text(data: bytes) -> str:
    """Convert RTF bytes to plain text."""
    out: list[str] = []
    pending = bytearray()  # \'xx bytes waiting to be decoded together (DBCS)
    fonts: dict[int, str] = {}
    default_cp = "cp1252"
    state = _State()
    stack: list[_State] = []
    skip_chars = 0
    font_number: int | None = None
    first_in_group = False
    position, size = 0, len(data)

    def flush() -> None:
        if pending:
            out.append(bytes(pending).decode(state.codepage, "replace"))
            pending.clear()

    while position < size:
        match = _TOKEN.match(data, position)
        if match is None:  # a lone backslash at the very end
            break
        position = match.end()
        word, arg, hexbyte, symbol, brace, text = match.groups()
        starts_group, first_in_group = first_in_group, False
        if hexbyte is not None:
            if skip_chars:
                skip_chars -= 1
            elif not state.skip:
                pending.append(int(hexbyte, 16))
            continue
        flush()
        if brace == b"{":
            if len(stack) >= _MAX_DEPTH:
                raise CorruptDocument("This RTF file is nested too deeply to read; it may be "
                                      "damaged.")
            stack.append(state)
            first_in_group = True
        elif brace == b"}":
            if state.in_fonttbl and font_number is not None:
                font_number = None
            state = stack.pop() if stack else state
        elif word is not None:
            name = word
            number = int(arg) if arg is not None else None
            if skip_chars and name != b"u":
                skip_chars -= 1
                continue
            if name == b"bin" and number:
                position += max(number, 0)
            elif name in _SKIP_DESTINATIONS:
                state = replace(state, skip=True, in_fonttbl=name == b"fonttbl")
            elif name == b"ansicpg" and number:
                default_cp = _codepage(f"cp{number}", default_cp)
                state = replace(state, codepage=default_cp)
            elif name in (b"mac", b"pc", b"pca"):
                default_cp = {b"mac": "mac_roman", b"pc": "cp437", b"pca": "cp850"}[name]
                state = replace(state, codepage=default_cp)
            elif name == b"f" and number is not None:
                if state.in_fonttbl:
                    font_number = number
                else:
                    state = replace(state, codepage=fonts.get(number, default_cp))
            elif name == b"fcharset" and state.in_fonttbl and font_number is not None:
                fonts[font_number] = _CHARSET_CODEPAGE.get(number or 0, default_cp)
            elif name == b"uc" and number is not None:
                state = replace(state, uc=max(0, min(number, 10)))
            elif name == b"u" and number is not None:
                if not state.skip:
                    out.append(_unicode(number))
                skip_chars = state.uc
            elif not state.skip and name in _SYMBOLS:
                out.append(_SYMBOLS[name])
        elif symbol is not None:
            if symbol == b"*" and starts_group:
                state = replace(state, skip=True)
            elif skip_chars:
                skip_chars -= 1
            elif not state.skip:
                out.append({b"~": "\u00a0", b"_": "-", b"-": "", b"\n": "\n\n",
                            b"\r": "\n\n"}.get(symbol, symbol.decode("latin-1")))
        elif text is not None:
            if skip_chars:
                dropped = min(skip_chars, len(text))
                text, skip_chars = text[dropped:], skip_chars - dropped
            if not state.skip and text:
                out.append(text.decode(state.codepage, "replace"))
    flush()
    return "".join(out)


def _unicode(number: int) -> str:
    if number < 0:
        number += 65536
    if 0xD800 <= number <= 0xDFFF or number > 0x10FFFF:
        return "\ufffd"
    return chr(number)


def _codepage(name: str, fallback: str) -> str:
    try:
        "".encode(name)
    except LookupError:
        return fallback
    return name


def extract_rtf(data: bytes, ctx: ExtractContext) -> str:
    """Extract an RTF document's text; table rows keep their cells on one line."""
    text = rtf_to_text(data)
    return re.sub(r"\t+\n", "\n", text.replace(" \t", "\t"))
