"""Quotable passages: a response's text cut where a person quoting it would cut.

Pure: text in, passages out. Paragraphs, list items and table rows stay whole; a
heading is not a passage of its own but travels with every passage of its section
(``Passage.heading``), so "Question 2: scale fail" still says which question the
paragraphs under it answer. A paragraph longer than :data:`MAX_WORDS` is cut at
sentence ends (a single sentence longer than that is cut between words).
Quoted replies (lines starting with ``>``) are left out: they are not the
respondent's words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["BODY", "MAX_WORDS", "Passage", "split_passages", "split_response"]

BODY = "body"
MAX_WORDS = 180
_HEADING_MAX_WORDS = 14

_LIST_ITEM = re.compile(
    r"^\s*(?:[-*\u2022\u25aa\u25cf\u2013\u00b7]|\(?[0-9]{1,2}[.)]|\(?[a-h][.)]|\([A-H]\))\s+"
)
_NUMBERED_HEADING = re.compile(
    r"^\s*(?:#{1,6}\s+|(?:question|q|cwestiwn|section|part|adran)\s*\(?[0-9a-d]{1,2}\)?[.:)]?\s*)",
    re.IGNORECASE,
)
_CELL_SEPARATOR = re.compile(r"\t+|\s*\|\s*")
_SENTENCE_END = re.compile(
    r"(?<=[.!?])[\"')\u201d\u2019]*\s+(?=[\"'(\u201c\u2018]?[A-Z0-9\u00c0-\u024f])"
)


@dataclass(frozen=True)
class Passage:
    """One quotable piece of a response.

    ``where`` is ``"body"`` or the attachment's file name; ``order`` counts passages
    from 0 within that source; ``heading`` is the heading of the section it sits in.
    """

    where: str
    order: int
    text: str
    heading: str = ""
    kind: str = "paragraph"  # paragraph | list_item | table_row


def _is_heading(line: str, next_block: bool, alone: bool = False) -> bool:
    """A short line that does not end like a sentence, or a 'Question 2:' style label.

    ``alone``: the line is a paragraph by itself, so "1. Trends" is a numbered section
    heading rather than the first item of a list.
    """
    stripped = line.strip()
    if not stripped or "\t" in stripped:
        return False
    words = stripped.split()
    if len(words) > _HEADING_MAX_WORDS:
        return False
    if _NUMBERED_HEADING.match(stripped) and len(words) <= _HEADING_MAX_WORDS:
        return True
    if stripped[-1] in ".,;!":
        return False
    if _LIST_ITEM.match(stripped):
        numbered = re.match(r"^\(?[0-9]{1,2}[.)]\s+[A-Z\u00c0-\u024f]", stripped)
        return bool(numbered) and alone and next_block and len(words) <= 10
    if stripped.endswith(":") or stripped.isupper():
        return True
    # A short title-like line standing alone above more text.
    return next_block and len(words) <= 10 and stripped[0].isupper() and not stripped.endswith("?")


def _cut_long(text: str, limit: int) -> list[str]:
    """Cut a paragraph at sentence ends into pieces of at most ``limit`` words."""
    every_word = text.split()
    if len(every_word) <= limit:
        return [text]
    pieces: list[str] = []
    current: list[str] = []
    count = 0
    # A sentence ends after ".", "!" or "?": a text with none is one sentence.
    ends = "." in text or "!" in text or "?" in text
    sentences = _SENTENCE_END.split(text) if ends else [text]
    for sentence in sentences:
        tokens = every_word if len(sentences) == 1 else sentence.split()
        words = len(tokens)
        if current and count + words > limit:
            pieces.append(" ".join(current))
            current, count = [], 0
        if words > limit:  # one enormous sentence: cut between words
            for start in range(0, len(tokens), limit):
                chunk = tokens[start : start + limit]
                if len(chunk) == limit:
                    pieces.append(" ".join(chunk))
                else:
                    current, count = chunk, len(chunk)
            continue
        current.append(sentence)
        count += words
    if current:
        pieces.append(" ".join(current))
    return pieces


def _blocks(text: str) -> Iterator[list[str]]:
    """Groups of consecutive non-blank lines, quoted reply lines left out."""
    block: list[str] = []
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.rstrip()
        if not line:  # blank (a line of spaces is blank once its end is stripped)
            if block:
                yield block
                block = []
        elif not line.lstrip().startswith(">"):
            block.append(line)
    if block:
        yield block


def _units(block: list[str]) -> Iterator[tuple[str, str]]:
    """A block's passages before cutting: (kind, text) for paragraphs, items and rows."""
    # Each line stripped, as it is joined into its passage.
    paragraph: list[str] = []
    item: list[str] = []

    def flush_paragraph() -> Iterator[tuple[str, str]]:
        if paragraph:
            yield "paragraph", " ".join(paragraph)
            paragraph.clear()

    def flush_item() -> Iterator[tuple[str, str]]:
        if item:
            yield "list_item", " ".join(item)
            item.clear()

    for line in block:
        stripped = line.strip()
        if "\t" in stripped or stripped.startswith("|"):
            yield from flush_item()
            yield from flush_paragraph()
            cells = [c.strip() for c in _CELL_SEPARATOR.split(stripped) if c.strip()]
            if cells:
                yield "table_row", " | ".join(cells)
        elif _LIST_ITEM.match(line):
            yield from flush_paragraph()
            yield from flush_item()
            item.append(stripped)
        elif item:
            item.append(stripped)  # a wrapped list item goes on
        else:
            paragraph.append(stripped)
    yield from flush_item()
    yield from flush_paragraph()


def split_passages(text: str, where: str = BODY, max_words: int = MAX_WORDS) -> list[Passage]:
    """Cut one text (an email body or one attachment's text) into passages.

    Args:
        text: the extracted text.
        where: ``"body"`` or the attachment's file name, recorded on each passage.
        max_words: the most words a paragraph passage holds before it is cut.
    """
    found: list[Passage] = []
    heading = ""
    blocks = list(_blocks(text))
    for index, block in enumerate(blocks):
        has_next = index + 1 < len(blocks)
        # A heading line may open a block ("Question 1\nText...") or stand alone.
        while block and _is_heading(block[0], has_next or len(block) > 1, len(block) == 1):
            if len(block) == 1 and not has_next:
                break  # a last short line is a sign-off, not a heading
            heading = block[0].strip().lstrip("#").strip()
            block = block[1:]
        for kind, unit in _units(block):
            pieces = _cut_long(unit, max_words) if kind == "paragraph" else [unit]
            for piece in pieces:
                found.append(Passage(where, len(found), piece, heading, kind))
    return found


def split_response(
    body: str | None, attachments: Iterable[tuple[str, str | None]]
) -> list[Passage]:
    """Every passage of one response: the body's, then each readable attachment's in turn."""
    passages = split_passages(body or "", BODY)
    for filename, text in attachments:
        if text and text.strip():
            passages.extend(split_passages(text, filename))
    return passages
