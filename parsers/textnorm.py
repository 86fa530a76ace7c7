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
    }
)
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")
_CID = re.compile(r"\(cid:\d+\)")
# U+FFFD and the private-use planes (category Co): what undecodable glyphs become.
_UNDECODABLE = re.compile("[\ufffd\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd]")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_BLANK_RUNS = re.compile(r"\n{3,}")


def normalize_text(text: str) -> str:
    """Return ``text`` in NFC with ligatures expanded and blank lines tidied.

    Tabs inside lines are kept (they separate table cells); at most one blank line
    separates paragraphs; leading and trailing whitespace is removed.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.translate(_LIGATURES)
    text = _CONTROL.sub("", text)
    text = unicodedata.normalize("NFC", text)
    text = _TRAILING_SPACE.sub("\n", text)
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
    bad = cids + len(_UNDECODABLE.findall(without))
    if not bad:
        return 0.0  # the usual case: no need to count the visible characters
    visible = cids + len("".join(without.split()))
    return bad / visible if visible else 0.0


def strip_placeholders(text: str) -> str:
    """Remove ``(cid:NN)`` placeholders and replacement characters from ``text``."""
    return _CID.sub("", text).replace("\ufffd", "")
