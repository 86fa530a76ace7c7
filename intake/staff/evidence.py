"""Evidence packs: every passage tagged with one question, quoted word for word.

Grouped by respondent type, then by response (reference, organisation), with the
counts at the top. Three renderings of the same :class:`EvidencePack`: Markdown,
HTML (self-contained, escaped) and Word (python-docx).
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from store import tags

from ..analysis.respondent import RESPONDENT_TYPES
from ..config import QuestionSettings

__all__ = ["EvidencePack", "gather_pack", "render_html", "render_markdown", "write_docx"]

_TYPE_NAMES = {
    "local_authority": "Local authorities",
    "public_body": "Public bodies",
    "community_organisation": "Community organisations",
    "charity": "Charities",
    "business": "Businesses",
    "academic": "Academics",
    "individual": "Individuals",
    "unknown": "Respondent type not known",
}


@dataclass(frozen=True)
class EvidencePack:
    """One question's evidence: its passages grouped by type and response."""

    question: QuestionSettings
    consultation: str
    rows: tuple[tags.EvidenceRow, ...]
    link_base: str = ""

    @property
    def responses(self) -> int:
        return len({row.submission_id for row in self.rows})

    def type_counts(self) -> Counter[str]:
        seen = {(row.submission_id, row.respondent_type) for row in self.rows}
        return Counter(kind for _, kind in seen)

    def groups(self) -> list[tuple[str, list[list[tags.EvidenceRow]]]]:
        """[(type, [rows of one response, ...]), ...] in the fixed order of the types."""
        found: list[tuple[str, list[list[tags.EvidenceRow]]]] = []
        for kind in RESPONDENT_TYPES:
            responses: dict[int, list[tags.EvidenceRow]] = {}
            for row in self.rows:
                if row.respondent_type == kind:
                    responses.setdefault(row.submission_id, []).append(row)
            if responses:
                found.append((kind, list(responses.values())))
        return found

    def link(self, reference: str) -> str:
        return f"{self.link_base.rstrip('/')}/{reference}" if self.link_base else ""


def gather_pack(
    session: Session, question: QuestionSettings, consultation: str, link_base: str = ""
) -> EvidencePack:
    return EvidencePack(
        question, consultation, tuple(tags.evidence_rows(session, question.key)), link_base
    )


def _who(first: tags.EvidenceRow) -> str:
    return first.organisation or first.sender_name or "(no organisation)"


def _where(row: tags.EvidenceRow) -> str:
    where = "email body" if row.where == "body" else row.where
    note = f"{where}, passage {row.seq}"
    if row.source == tags.STAFF:
        note += ", tagged by staff"
    elif row.score is not None:
        note += f", score {row.score:.2f}"
    return note


def _count_line(pack: EvidencePack) -> list[str]:
    counts = pack.type_counts()
    return [f"{_TYPE_NAMES[k]}: {counts[k]}" for k in RESPONDENT_TYPES if counts[k]]


def render_markdown(pack: EvidencePack) -> str:
    q = pack.question
    out = [
        f"# {pack.consultation}: evidence for question {q.key}, {q.title}",
        "",
        f"> {q.text}" if q.text else "",
        "",
        f"**{pack.responses} response(s), {len(pack.rows)} passage(s).** "
        + "; ".join(_count_line(pack)),
        "",
        "Passages are quoted word for word from the responses.",
    ]
    for kind, responses in pack.groups():
        out += ["", f"## {_TYPE_NAMES[kind]} ({len(responses)})"]
        for rows in responses:
            first = rows[0]
            link = pack.link(first.reference)
            ref = f"[{first.reference}]({link})" if link else first.reference
            out += ["", f"### {ref}: {_who(first)}"]
            for row in rows:
                quoted = "\n".join(f"> {line}" if line else ">" for line in row.text.splitlines())
                out += ["", quoted, "", f"*{_where(row)}*"]
    return "\n".join(out).rstrip() + "\n"


def render_html(pack: EvidencePack) -> str:
    q = pack.question
    esc = html.escape
    title = f"{pack.consultation}: evidence for question {q.key}, {q.title}"
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:50em;margin:2em auto;line-height:1.4}"
        "blockquote{border-left:4px solid #888;margin:1em 0;padding:0 1em;white-space:pre-wrap}"
        ".where{color:#555;font-size:.9em}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<p><em>{esc(q.text)}</em></p>" if q.text else "",
        f"<p><strong>{pack.responses} response(s), {len(pack.rows)} passage(s).</strong></p>",
        "<ul>" + "".join(f"<li>{esc(line)}</li>" for line in _count_line(pack)) + "</ul>",
    ]
    for kind, responses in pack.groups():
        out.append(f"<h2>{esc(_TYPE_NAMES[kind])} ({len(responses)})</h2>")
        for rows in responses:
            first = rows[0]
            link = pack.link(first.reference)
            ref = (
                f'<a href="{esc(link)}">{esc(first.reference)}</a>'
                if link
                else esc(first.reference)
            )
            out.append(f"<h3>{ref}: {esc(_who(first))}</h3>")
            for row in rows:
                out.append(f"<blockquote>{esc(row.text)}</blockquote>")
                out.append(f'<p class="where">{esc(_where(row))}</p>')
    out.append("</body></html>")
    return "\n".join(line for line in out if line) + "\n"


def write_docx(pack: EvidencePack, path: Path) -> None:
    from docx import Document  # python-docx: only loaded for this format

    q = pack.question
    document = Document()
    document.add_heading(f"{pack.consultation}: evidence for question {q.key}, {q.title}", 0)
    if q.text:
        document.add_paragraph().add_run(q.text).italic = True
    document.add_paragraph(f"{pack.responses} response(s), {len(pack.rows)} passage(s).")
    for line in _count_line(pack):
        document.add_paragraph(line, style="List Bullet")
    for kind, responses in pack.groups():
        document.add_heading(f"{_TYPE_NAMES[kind]} ({len(responses)})", 1)
        for rows in responses:
            first = rows[0]
            link = pack.link(first.reference)
            document.add_heading(
                f"{first.reference}: {_who(first)}" + (f" ({link})" if link else ""), 2
            )
            for row in rows:
                document.add_paragraph(_docx_safe(row.text), style="Quote")
                document.add_paragraph(_where(row)).runs[0].italic = True
    document.save(str(path))


def _docx_safe(text: str) -> str:
    # XML 1.0 forbids most control characters; python-docx would refuse them.
    return "".join(ch for ch in text if ch in "\t\n" or ord(ch) >= 32)
