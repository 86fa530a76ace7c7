"""Decode bytes of any charset: the declared charset if it decodes, else detection.

Order: a byte-order mark, then the declared charset (when Python knows it and the
bytes decode with it), then strict UTF-8, then charset-normalizer's best guess, and
as a last resort cp1252 with replacement characters (which the registry then
counts towards ``garbled``). Message bodies in the main process and the text-like
extractors both decode here.
"""

from __future__ import annotations

import codecs

__all__ = ["decode_text"]

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Charsets mail clients declare that Python spells differently.
_ALIASES = {"ks_c_5601-1987": "cp949", "x-sjis": "shift_jis", "gb2312": "gb18030",
            "gbk": "gb18030", "iso-8859-8-i": "iso-8859-8", "x-gbk": "gb18030"}


def decode_text(data: bytes, declared_charset: str | None = None) -> str:
    """Decode ``data`` to str: declared charset if valid, else detect it.

    Never raises: undecodable bytes end up as U+FFFD.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data[len(bom):].decode(codec, "replace")
    codec_name = _known_codec(declared_charset)
    if codec_name:
        try:
            return data.decode(codec_name)
        except (UnicodeDecodeError, LookupError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    import charset_normalizer  # only for bytes no charset fits: most mail never needs it

    best = charset_normalizer.from_bytes(data[:200_000]).best()
    if best is not None and best.encoding:
        try:
            return data.decode(best.encoding, "replace")
        except LookupError:
            pass
    return data.decode("cp1252", "replace")


def _known_codec(charset: str | None) -> str | None:
    if not charset:
        return None
    name = charset.strip().strip("\"'").lower()
    name = _ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    # Declared utf-7 and other exotic codecs are still honoured; only the
    # "undefined"-style codecs that cannot decode text are refused.
    return None if info.name in ("undefined",) else info.name
