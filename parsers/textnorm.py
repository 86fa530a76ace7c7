"""Normalise extracted text and judge whether it is real text or garbage.

Pure functions shared by every extractor: Unicode NFC, ligatures expanded, line
endings unified, paragraphs separated by exactly one blank line, and a measure of
how much of a text is ``(cid:NN)`` placeholders or replacement characters.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["garbage_ratio", "join_blocks", "normalize_text", "strip_placeholders"]

# Presentation-form ligatures (U+FB00..U+FB06) that PDF fonts emit for "fi", "fl"...
_LIGATURES = str.maketrans(
    {
        "\ufb00": "ff",
        "\ufb01": "fi",
        "\ufb02": "fl",
        "\ufb03": "ffi",
        "\ufb04": "ffl",
        "\ufb05": "st",
        "\ufb06": "st",
        "\u00ad": None,  # soft hyphen: invisible in print, noise in search
        "\u00a0": " ",
        "\u2028": "\n",
        "\u2029": "\n\n",
        "\ufeff": None,
        "\x0c": "\n\n",  # form feed between pages
        "\x0b": "\n",
        # Other control characters (tab and line ends stay): dropped.
        **{chr(code): None for code in (*range(0x00, 0x09), *range(0x0E, 0x20), 0x7F)},
    }
)
_CID = re.compile(r"\(cid:\d+\)")
# U+FFFD and the private-use planes (category Co): what undecodable glyphs become.
_UNDECODABLE = re.compile("[\ufffd\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd]")
# The same characters and a few never-used neighbours, as one negated class: a quick
# first look (three times faster than the exact class) before counting exactly.
_MAYBE_UNDECODABLE = re.compile("[^\x00-\udfff\uf900-\ufffc\ufffe-\U000effff]")
# Written with a literal start, which the regular expression engine looks for first:
# twenty times faster than "\n{3,}" on a long text.
_BLANK_RUNS = re.compile(r"\n\n\n+")


def normalize_text(text: str) -> str:
    """Return ``text`` in NFC with ligatures expanded and blank lines tidied.

    Tabs inside lines are kept (they separate table cells); at most one blank line
    separates paragraphs; leading and trailing whitespace is removed.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.translate(_LIGATURES)
    text = unicodedata.normalize("NFC", text)
    # Spaces and tabs at line ends: by line, several times faster than a regex.
    text = "\n".join(line.rstrip(" \t") for line in text.split("\n"))
    text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip()


def join_blocks(blocks: list[str]) -> str:
    """Join paragraphs or blocks with one blank line, dropping empty ones."""
    return "\n\n".join(block.strip("\n") for block in blocks if block.strip())


def garbage_ratio(text: str) -> float:
    """Share of the visible characters that are placeholders or undecodable.

    Counts ``(cid:NN)`` placeholders (each as one lost character), U+FFFD
    replacement characters and private-use code points, over all non-space
    characters with placeholders counted once.
    """
    cids = len(_CID.findall(text)) if "(cid:" in text else 0
    without = _CID.sub("", text) if cids else text
    bad = cids
    if not without.isascii() and _MAYBE_UNDECODABLE.search(without):
        bad += len(_UNDECODABLE.findall(without))
    if not bad:
        return 0.0  # the usual case: no need to count the visible characters
    visible = cids + len("".join(without.split()))
    return bad / visible if visible else 0.0


def strip_placeholders(text: str) -> str:
    """Remove ``(cid:NN)`` placeholders and replacement characters from ``text``."""
    return _CID.sub("", text).replace("\ufffd", "")
