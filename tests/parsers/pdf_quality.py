"""Score extracted text against a golden PDF's expectations (tests/data/pdf/<case>.json).

Shared by tests/parsers/test_pdf_golden.py and benchmarks/extract.py. Four scores,
each from 0 to 1:

- ``found``: expected sentences present (whitespace ignored);
- ``order``: expected sentences found in sequence, each after the previous one;
- ``hyphens``: split words joined ("appraisal") and real compounds kept
  ("re-procurement"), counted over both lists;
- ``clean``: running headers and footers absent; table rows present as tab-separated
  rows.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "pdf"
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Score:
    found: float
    order: float
    hyphens: float
    clean: float

    def at_least(self, other: Score) -> bool:
        return (self.found >= other.found and self.order >= other.order
                and self.hyphens >= other.hyphens and self.clean >= other.clean)


def golden_cases() -> list[str]:
    return sorted(path.stem for path in GOLDEN.glob("*.pdf"))


def expectations(case: str) -> dict[str, list[str]]:
    return dict(json.loads((GOLDEN / f"{case}.json").read_text(encoding="utf-8")))


def score(text: str, spec: dict[str, list[str]]) -> Score:
    flat = _SPACE.sub(" ", text)
    sentences = spec["sentences"]
    found = sum(1 for sentence in sentences if sentence in flat)
    position = in_order = 0
    for sentence in sentences:
        at = flat.find(sentence, position)
        if at >= 0:
            in_order += 1
            position = at + len(sentence)
    words = set(re.findall(r"[\w-]+", flat))
    checks = [w in words for w in spec["joined"]] + [w in words for w in spec["kept"]]
    clean = [needle not in text for needle in spec["absent"]]
    clean += [row in text.splitlines() for row in spec.get("rows", [])]
    return Score(found=found / len(sentences), order=in_order / len(sentences),
                 hyphens=sum(checks) / len(checks) if checks else 1.0,
                 clean=sum(clean) / len(clean) if clean else 1.0)
