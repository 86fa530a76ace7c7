"""Clean PDF page text: reading order, line-end hyphens, running headers and footers.

Pure functions (no PDF library, no I/O), shared by every PDF engine:

- :func:`order_lines` puts the lines of one page in reading order, from their boxes:
  on a two-column page whose lines alternate between the columns it reads the left
  column, then the right one, band by band (a full-width line such as a title or a
  table row ends a band); table rows keep their cells, separated by tabs; a vertical
  gap bigger than a line's height starts a new paragraph.
- :func:`join_hyphens` joins a word split at a line end ("ap-" / "praisal" becomes
  "appraisal") and keeps a real hyphen ("re-" / "procurement" stays
  "re-procurement"). The rule, in order, for a line ending in ``A-`` followed by a
  line starting with a lower-case ``B``:

  1. ``A-B`` written on one line elsewhere in the document: keep the hyphen;
  2. ``AB`` written elsewhere in the document: join;
  3. ``A`` is a prefix English writes with a hyphen (``co non self ex anti cross
     multi semi well half long short``...), or ``B`` is a common second half of a
     compound (``based led term being funded free``...): keep;
  4. ``A`` is a prefix that is also a plain first syllable (``re pre post pro sub
     inter over under mid``) and ``B`` has at least ten letters or is a word used
     elsewhere in the document: keep ("re-procurement", but "re-" / "spondents" is
     joined);
  5. both ``A`` and ``B`` are words used elsewhere in the document (each at least
     two letters): keep;
  6. otherwise join: a typesetter's break inside a word.

  Soft hyphens (U+00AD) are always removed.
- :func:`remove_running` drops lines that repeat at the top or bottom of most pages
  (running headers and footers, with their page numbers) and bare page numbers.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

__all__ = [
    "PageLine",
    "join_hyphens",
    "order_lines",
    "page_ranges",
    "remove_running",
    "vocabulary",
]

# PDFium marks a hyphen it found at a line end with U+FFFE (sometimes U+0002) and
# drops the line break; both come back here as "-\n".
PDFIUM_HYPHEN_MARKS = ("\ufffe", "\x02")
# Prefixes written with a hyphen in English compounds ("co-operative", "self-funded").
_PREFIXES = frozenset(
    "co non self ex anti cross multi semi well counter half low high long short full "
    "part one two three all cost".split()
)
# Prefixes that are also a plain first syllable ("re-spondents"): kept only before a
# long remainder ("re-procurement") or a word used elsewhere in the document.
_WEAK_PREFIXES = frozenset("re pre post pro sub inter intra over under mid".split())
_WEAK_MIN_TAIL = 10
# Second halves of common compounds ("evidence-based", "long-term", "well-being").
_COMPOUND_TAILS = frozenset(
    "based led term being funded free friendly making wide scale owned run related "
    "specific focused only wise like known minded time year old".split()
)
_HYPHEN_BREAK = re.compile(
    r"(\w+)([-\u00ad])\n[^\S\n]*([a-z]\w*)([^\w\s]*)([^\S\n]*)", re.UNICODE
)
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*", re.UNICODE)
_PAGE_NUMBER = re.compile(
    r"^[\s\-\u2013\u2014|]*(?:(?:page|p\.?|tudalen)\s*)?\d{1,4}"
    r"(?:\s*(?:of|/|o)\s*\d{1,4})?[\s\-\u2013\u2014|]*$",
    re.IGNORECASE,
)
_DIGITS = re.compile(r"\d+")
_SPACES = re.compile(r"\s+")


class PageLine(NamedTuple):
    """One line of a page: its text and its box (PDF units, y grows upwards).

    ``parts`` holds the pieces of a line that stand apart on the page (table cells,
    or the left and right column when an engine read across both): each with its
    own text and box.
    """

    text: str
    left: float
    bottom: float
    right: float
    top: float
    parts: tuple[PageLine, ...] = ()

    @property
    def height(self) -> float:
        return max(self.top - self.bottom, 1.0)


def order_lines(lines: Sequence[PageLine]) -> str:
    """The text of one page from its lines, in reading order.

    Args:
        lines: the page's lines in the order the engine found them.

    Returns:
        Lines joined with newlines, a blank line between paragraphs, table cells
        joined with tabs.
    """
    if not lines:
        return ""
    ordered = _column_order(lines)
    first = ordered[0]
    out = ["\t".join(part.text for part in first.parts) if first.parts else first.text]
    bottom, top, height, cells = first.bottom, first.top, first.height, bool(first.parts)
    for line in ordered[1:]:
        own = line.top - line.bottom
        own = own if own > 1.0 else 1.0
        low = own if own < height else height
        # A gap taller than most of a line is a paragraph break (a table's rows stay
        # together); a line above the previous one starts another column.
        if ((bottom - line.top > 0.8 * low and not (cells and line.parts))
                or line.top > top + 2 * low):
            out.append("")
        out.append("\t".join(part.text for part in line.parts) if line.parts else line.text)
        bottom, top, height, cells = line.bottom, line.top, own, bool(line.parts)
    return "\n".join(out)


def _merge(parts: Sequence[PageLine]) -> PageLine:
    if len(parts) == 1:
        return parts[0]
    return PageLine(
        "\t".join(part.text for part in parts), min(p.left for p in parts),
        min(p.bottom for p in parts), max(p.right for p in parts), max(p.top for p in parts),
        tuple(parts))


def _column_order(lines: Sequence[PageLine]) -> list[PageLine]:
    """Lines reordered column by column when the engine interleaved two columns."""
    gutter = _find_gutter(lines)
    if gutter is None:
        return list(lines)
    # A line whose pieces lie wholly left and right of the gutter is two lines.
    split: list[PageLine] = []
    for line in lines:
        if line.parts and all(p.right <= gutter or p.left >= gutter for p in line.parts):
            left = [p for p in line.parts if p.right <= gutter]
            right = [p for p in line.parts if p.left >= gutter]
            split.extend(_merge(group) for group in (left, right) if group)
        else:
            split.append(line)
    sides = ["F" if line.left < gutter < line.right else "L" if line.right <= gutter else "R"
             for line in split]
    # Alternation inside a band (a run without full-width lines) means the engine read
    # across the columns; a band read left then right is already in order.
    ordered: list[PageLine] = []
    band: list[int] = []
    switched = False
    for index, side in enumerate([*sides, "F"]):
        if side != "F":
            if band and side == "L" and sides[band[-1]] == "R":
                switched = True
            band.append(index)
            continue
        if switched:
            for wanted in ("L", "R"):
                column = [split[i] for i in band if sides[i] == wanted]
                ordered.extend(sorted(column, key=lambda line: -line.top))
        else:
            ordered.extend(split[i] for i in band)
        band, switched = [], False
        if index < len(split):
            ordered.append(split[index])
    return ordered


def _pieces(lines: Sequence[PageLine]) -> list[PageLine]:
    return [part for line in lines for part in (line.parts or (line,))]


def _find_gutter(lines: Sequence[PageLine]) -> float | None:
    """The x of an empty vertical strip with column text on both sides, if any."""
    pieces = _pieces(lines)
    if len(pieces) < 6:
        return None
    left = min(piece.left for piece in pieces)
    right = max(piece.right for piece in pieces)
    width = right - left
    if width <= 0:
        return None
    narrow = sorted((piece.left, piece.right) for piece in pieces
                    if piece.right - piece.left < 0.6 * width)
    if len(narrow) < 6:
        return None
    merged: list[list[float]] = []
    for start, end in narrow:
        if merged and start <= merged[-1][1] + 1.0:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    for (_, gap_start), (gap_end, _) in zip(merged, merged[1:], strict=False):
        middle = (gap_start + gap_end) / 2
        if gap_end - gap_start < 6.0 or not left + 0.25 * width < middle < left + 0.75 * width:
            continue
        on_left = [end - start for start, end in narrow if end <= middle]
        on_right = [end - start for start, end in narrow if start >= middle]
        # Column text fills its column; table cells do not.
        if (len(on_left) >= 3 and len(on_right) >= 3
                and _median(on_left) > 0.25 * width and _median(on_right) > 0.25 * width):
            return middle
    return None


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def vocabulary(text: str) -> Counter[str]:
    """Lower-cased words (and hyphenated compounds) of ``text`` with their counts.

    The two halves of a word split at a line end are not counted: they are what is
    being judged.
    """
    return Counter(word.lower() for word in _WORD.findall(_HYPHEN_BREAK.sub(" ", text)))


def join_hyphens(text: str, words: Counter[str] | None = None) -> str:
    """Join words split at line ends; keep real hyphens (see the module docstring).

    Args:
        text: page or document text with ``-\\n`` at line-end hyphens.
        words: the document's vocabulary (:func:`vocabulary`); by default, ``text``'s.
    """
    if "-\n" not in text and "\u00ad\n" not in text:
        return text.replace("\u00ad", "")
    if words is None:
        words = vocabulary(text)

    def replace(match: re.Match[str]) -> str:
        head, mark, tail, punctuation, after = match.groups()
        keep = mark == "-" and _keep_hyphen(head, tail, words)
        joined = f"{head}-{tail}" if keep else head + tail
        # The completed word ends the line it started on, as a typesetter would set it.
        return joined + punctuation + ("\n" if after else "")

    return _HYPHEN_BREAK.sub(replace, text).replace("\u00ad", "")


def _keep_hyphen(head: str, tail: str, words: Counter[str]) -> bool:
    first = head.lower()
    second = tail.lower()
    if not first.isalpha():
        return True  # "2024-" / "25"
    if words.get(f"{first}-{second}", 0) > 0:
        return True
    if words.get(first + second, 0) > 0:
        return False
    if first in _PREFIXES or second in _COMPOUND_TAILS:
        return True
    if first in _WEAK_PREFIXES and (len(second) >= _WEAK_MIN_TAIL or words.get(second, 0) > 0):
        return True
    return (len(first) >= 2 and len(second) >= 2 and words.get(first, 0) > 0
            and words.get(second, 0) > 0 and first not in ("a", "an", "i"))


def remove_running(pages: Sequence[str]) -> tuple[list[str], list[str]]:
    """Drop running headers, footers and page numbers from a document's pages.

    A line counts as running when it is among the first two or last two lines of a
    page (the first or last on a page of four lines or fewer) and, with its digits
    ignored, is also there on at least half of the pages (at least two). A line that
    is only a page number ("7", "Page 2 of 9", "- 3 -") at the top or bottom of a page
    is dropped too, in documents of two pages or more.

    Returns:
        The pages without those lines, and the distinct lines removed.
    """
    if len(pages) < 2:
        return list(pages), []
    split = [page.split("\n") for page in pages]
    edges: Counter[str] = Counter()
    for lines in split:
        seen = {_edge_key(line) for line in _edge_lines(lines)}
        edges.update(key for key in seen if key)
    needed = max(2, (len(pages) + 1) // 2)
    running = {key for key, count in edges.items() if count >= needed}
    removed: dict[str, None] = {}
    out: list[str] = []
    for lines in split:
        keep = list(lines)
        for index in _edge_indexes(lines):
            line = lines[index]
            if _edge_key(line) in running or _PAGE_NUMBER.match(line):
                removed.setdefault(line.strip(), None)
                keep[index] = "\0"
        out.append("\n".join(line for line in keep if line != "\0").strip("\n"))
    return out, list(removed)


def _edge_indexes(lines: list[str]) -> list[int]:
    head = _filled(range(len(lines)), lines, 5)
    if len(head) <= 4:  # a short page: only its first and last line
        return sorted(set(head[:1] + head[-1:]))
    tail = _filled(range(len(lines) - 1, -1, -1), lines, 2)
    return sorted(set(head[:2] + tail))


def _filled(order: range, lines: list[str], wanted: int) -> list[int]:
    found: list[int] = []
    for index in order:
        if lines[index].strip():
            found.append(index)
            if len(found) == wanted:
                break
    return found


def _edge_lines(lines: list[str]) -> list[str]:
    return [lines[i] for i in _edge_indexes(lines)]


def _edge_key(line: str) -> str:
    return _SPACES.sub(" ", _DIGITS.sub("#", line)).strip().lower()


def page_ranges(numbers: Sequence[int]) -> str:
    """``[1, 2, 3, 7]`` as ``"1-3, 7"`` (page numbers for people)."""
    if not numbers:
        return ""
    spans: list[str] = []
    ordered = sorted(numbers)
    start = prev = ordered[0]
    for number in [*ordered[1:], 0]:
        if number != prev + 1:
            spans.append(str(start) if start == prev else f"{start}-{prev}")
            start = number
        prev = number
    return ", ".join(spans)
