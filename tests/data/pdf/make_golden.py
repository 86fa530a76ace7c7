"""Write the golden PDFs in this folder with ReportLab: layouts the PDF reader must get right.

Run ``python tests/data/pdf/make_golden.py`` from the repository root; it rewrites every
``<case>.pdf`` deterministically (ReportLab's invariant mode) and ``<case>.json``:
the sentences the text must contain, in reading order, and the hyphenated words that
must come out joined or kept. ``<case>.txt`` is the exact text of the default engine,
checked by tests/parsers/test_pdf_golden.py and written by hand after review.

Cases: ``columns`` (two pages: running header and footer, full-width title, two
columns written column by column, line-end hyphens), ``interleaved`` (two columns whose
lines are written across the page, left line then right line), ``running`` (four
pages with a header, a "Page N of 4" footer and a table), ``hyphens`` (real and
typesetter's hyphens, a soft hyphen).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from reportlab.lib.pagesizes import A4
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen import canvas

HERE = Path(__file__).resolve().parent
FONT, SIZE, LEADING = "Helvetica", 10.5, 13.5
WIDTH, HEIGHT = A4
BREAK = "|"  # in a paragraph: end the line here; "-|" a real hyphen, "~|" a word split

COLUMN_TEXT = [
    "We support the new bus routes for the north of the town. Residents in Mill Road "
    "wait too long for a bus in the morning, and an ap~|praisal of the timetable is "
    "overdue. The council should publish the figures it holds.",
    "The re-|procurement of the bus contract must include evening services. A co-|operative "
    "model run with local firms would keep money in the area and give residents a say.",
    "Cycle lanes on the high street are welcome, but the junction at the station needs "
    "safer crossings for children walking to the primary school.",
    "Parking charges near the market hurt small shops. We ask the council to review the "
    "charges after one year and to publish the results of that review.",
    "Our members also want the library to stay open on Saturday after~|noons, when "
    "families have time to visit together.",
    "Finally, the consultation period was too short for com~|munity groups that meet "
    "monthly; a longer period would allow a proper response from everyone.",
]

RIGHT_TEXT = [
    "Flooding on the river path closes it every winter. A raised board~|walk would keep "
    "the path open all year and protect the new planting along the bank.",
    "Street lighting in the park is poor after dark. Brighter lamps near the play area "
    "would make parents feel safer on winter evenings.",
    "The self-|funded community bus has carried older residents to the clinic for ten "
    "years; it needs a small grant to replace its vehicle.",
]

HYPHEN_TEXT = [
    "This response comes from the tenants of Castle Court. We want an indepen~|dent "
    "review of the heating system, which fails every January.",
    "The non-|residential units on the ground floor should pay their share of the "
    "repairs. The long-|term plan must be published before any work begins.",
    "We welcome the evidence-|based approach in the draft strategy, and the well-|being "
    "survey planned for the spring.",
    "Soft hyphens in the file must vanish: main\u00ad|tenance costs rose by a third, "
    "and the man~|agement company has not explained why.",
]

TABLE = [("Question", "Answer", "Score"), ("Bus routes", "Agree", "4"),
         ("Cycle lanes", "Disagree", "2"), ("Parking", "Neutral", "3")]


def _wrap(text: str, width: float) -> list[str]:
    """Greedy line breaking; ``|`` forces a break there (kept hyphen stays at the end)."""
    lines: list[str] = []
    for chunk in text.split(BREAK):
        line = ""
        for word in chunk.split(" "):
            trial = f"{line} {word}".strip()
            if line and stringWidth(trial, FONT, SIZE) > width:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line[:-1] + "-" if line.endswith("~") else line)
    return lines


def _paragraphs(c: canvas.Canvas, paragraphs: list[str], x: float, y: float,
                width: float) -> float:
    for paragraph in paragraphs:
        for line in _wrap(paragraph, width):
            c.drawString(x, y, line)
            y -= LEADING
        y -= LEADING
    return y


def _chrome(c: canvas.Canvas, page: int, pages: int) -> None:
    c.setFont(FONT, 8)
    c.drawString(72, HEIGHT - 40, "Kilbride Council - Call for evidence on local transport")
    c.drawRightString(WIDTH - 72, 30, f"Page {page} of {pages}")
    c.setFont(FONT, SIZE)


def _pdf(draw: object) -> bytes:
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=A4, invariant=1, pageCompression=1)
    c.setTitle("Consultation response")
    c.setAuthor("")
    draw(c)  # type: ignore[operator]
    c.save()
    return buffer.getvalue()


def columns(c: canvas.Canvas) -> None:
    column = (WIDTH - 144 - 24) / 2
    for page, (left, right) in enumerate([(COLUMN_TEXT[:3], COLUMN_TEXT[3:]),
                                          (RIGHT_TEXT[:2], RIGHT_TEXT[2:])], 1):
        _chrome(c, page, 2)
        if page == 1:
            c.setFont("Helvetica-Bold", 14)
            c.drawString(72, HEIGHT - 90, "Response from the Mill Road Residents' Association")
            c.setFont(FONT, SIZE)
        top = HEIGHT - 130
        _paragraphs(c, left, 72, top, column)
        _paragraphs(c, right, 72 + column + 24, top, column)
        c.showPage()


def interleaved(c: canvas.Canvas) -> None:
    column = (WIDTH - 144 - 24) / 2
    _chrome(c, 1, 1)
    c.setFont("Helvetica-Bold", 14)
    c.drawString(72, HEIGHT - 90, "Response from the Castle Court Tenants")
    c.setFont(FONT, SIZE)
    left = [line for p in COLUMN_TEXT[2:4] for line in [*_wrap(p, column), ""]]
    right = [line for p in RIGHT_TEXT[:2] for line in [*_wrap(p, column), ""]]
    y = HEIGHT - 130
    for number in range(max(len(left), len(right))):
        # One text object per row, left line then right line: read across by many tools.
        if number < len(left) and left[number]:
            c.drawString(72, y, left[number])
        if number < len(right) and right[number]:
            c.drawString(72 + column + 24, y, right[number])
        y -= LEADING
    c.showPage()


def running(c: canvas.Canvas) -> None:
    for page in range(1, 5):
        _chrome(c, page, 4)
        y = HEIGHT - 100
        if page == 3:
            c.drawString(72, y, "Our answers to the four questions:")
            y -= 2 * LEADING
            for row in TABLE:
                for column, cell in enumerate(row):
                    c.drawString(72 + 150 * column, y, cell)
                y -= LEADING * 1.6
            y -= LEADING
        paragraphs = [_flat(COLUMN_TEXT[(page + k) % len(COLUMN_TEXT)])
                      for k in range(2)]
        _paragraphs(c, paragraphs, 72, y, WIDTH - 144)
        c.showPage()


def _flat(text: str) -> str:
    return text.replace("~" + BREAK, "").replace(BREAK, "")


def hyphens(c: canvas.Canvas) -> None:
    _paragraphs(c, HYPHEN_TEXT, 72, HEIGHT - 90, WIDTH - 144)
    c.showPage()


def _sentences(paragraphs: list[str]) -> list[str]:
    out: list[str] = []
    for paragraph in paragraphs:
        text = paragraph.replace("-" + BREAK, "-").replace("\u00ad" + BREAK, "")
        text = text.replace("~" + BREAK, "")
        text = text.replace(BREAK, "")
        out += [s.strip() + "." for s in text.split(". ") if s.strip()]
    return [s[:-1] if s.endswith("..") else s for s in out]


def cases() -> dict[str, tuple[bytes, dict[str, object]]]:
    """Each case's PDF and its expectations (sentences in order, hyphen checks)."""
    joined = ["appraisal", "afternoons", "community", "boardwalk", "independent",
              "maintenance", "management"]
    kept = ["re-procurement", "co-operative", "self-funded", "non-residential", "long-term",
            "evidence-based", "well-being"]
    expect = {
        "columns": (columns, {
            "sentences": _sentences(COLUMN_TEXT) + _sentences(RIGHT_TEXT),
            "joined": joined[:4], "kept": kept[:3],
            "absent": ["Kilbride Council - Call for evidence", "Page 1 of 2"]}),
        "interleaved": (interleaved, {
            "sentences": _sentences(COLUMN_TEXT[2:4]) + _sentences(RIGHT_TEXT[:2]),
            "joined": [], "kept": [], "absent": []}),
        "running": (running, {
            "sentences": [s for page in range(1, 5) for s in _sentences(
                [_flat(COLUMN_TEXT[(page + k) % len(COLUMN_TEXT)])
                 for k in range(2)])],
            "rows": ["\t".join(row) for row in TABLE],
            "joined": [], "kept": [],
            "absent": ["Kilbride Council - Call for evidence", "Page 2 of 4"]}),
        "hyphens": (hyphens, {
            "sentences": _sentences(HYPHEN_TEXT), "joined": joined[4:], "kept": kept[3:],
            "absent": ["\u00ad"]}),
    }
    return {name: (_pdf(draw), spec) for name, (draw, spec) in expect.items()}


def main() -> None:
    for name, (data, spec) in cases().items():
        (HERE / f"{name}.pdf").write_bytes(data)
        (HERE / f"{name}.json").write_text(json.dumps(spec, indent=1, ensure_ascii=False) + "\n",
                                           encoding="utf-8")


if __name__ == "__main__":
    main()
