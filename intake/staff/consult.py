"""The passages per question in the input layout of i.AI's Consult.

Consult (github.com/i-dot-ai/consult) imports a consultation from a folder::

    inputs/respondents.jsonl                  {"themefinder_id": 1, "demographic_data": {...}}
    inputs/question_part_N/question.json      {"question_text": ..., "question_number": N, ...}
    inputs/question_part_N/responses.jsonl    {"themefinder_id": 1, "text": ...}

Its loaders forbid unknown keys, so nothing else goes in those files. Each response
becomes one respondent (``themefinder_id`` is the submission's id) whose answer to a
question is its passages tagged with that question, joined with blank lines; the
respondent type and organisation go in ``demographic_data``. ``references.jsonl``
beside ``inputs/`` maps each ``themefinder_id`` back to our reference.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.orm import Session

from store import tags

from ..config import QuestionSettings

__all__ = ["write_consult"]


def _jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_consult(
    session: Session, questions: tuple[QuestionSettings, ...], folder: Path
) -> tuple[int, int]:
    """Write the Consult input folder; returns (respondents, answers) written."""
    inputs = folder / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    respondents: dict[int, dict[str, object]] = {}
    references: dict[int, str] = {}
    answers = 0
    for number, question in enumerate(questions, start=1):
        part = inputs / f"question_part_{number}"
        part.mkdir(exist_ok=True)
        text = question.text or question.title
        (part / "question.json").write_text(
            json.dumps(
                {
                    "question_text": text,
                    "question_number": number,
                    "has_free_text": True,
                    "multi_choice_options": [],
                },
                ensure_ascii=False,
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        by_response: dict[int, list[str]] = {}
        for row in tags.evidence_rows(session, question.key):
            by_response.setdefault(row.submission_id, []).append(row.text)
            references[row.submission_id] = row.reference
            demographics: dict[str, list[str]] = {"respondent_type": [row.respondent_type]}
            if row.organisation:
                demographics["organisation"] = [row.organisation]
            respondents[row.submission_id] = {
                "themefinder_id": row.submission_id,
                "demographic_data": demographics,
            }
        _jsonl(
            part / "responses.jsonl",
            [{"themefinder_id": sid, "text": "\n\n".join(t)} for sid, t in by_response.items()],
        )
        answers += len(by_response)
    _jsonl(inputs / "respondents.jsonl", [respondents[k] for k in sorted(respondents)])
    _jsonl(
        folder / "references.jsonl",
        [{"themefinder_id": k, "reference": references[k]} for k in sorted(references)],
    )
    return len(respondents), answers
