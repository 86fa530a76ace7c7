"""Golden PDFs (tests/data/pdf): exact text, reading order, hyphens, per engine."""

from __future__ import annotations

import pytest
from pdf_quality import GOLDEN, expectations, golden_cases, score

from parsers import Limits, ParseStatus, extract


def _read(case: str, engine: str) -> str:
    result = extract((GOLDEN / f"{case}.pdf").read_bytes(), filename=f"{case}.pdf",
                     limits=Limits(pdf_engine=engine))
    assert result.status is ParseStatus.OK, result.message
    return result.text


@pytest.mark.parametrize("case", golden_cases())
def test_default_engine_gives_the_expected_text(case: str) -> None:
    """The default engine gives exactly the reviewed text of each golden PDF."""
    expected = (GOLDEN / f"{case}.txt").read_text(encoding="utf-8").rstrip("\n")
    assert _read(case, "auto") == expected


@pytest.mark.parametrize("case", golden_cases())
def test_default_engine_is_complete_and_in_order(case: str) -> None:
    """Every sentence, in reading order, hyphens right, headers and footers gone."""
    found = score(_read(case, "auto"), expectations(case))
    assert (found.found, found.order, found.hyphens, found.clean) == (1.0, 1.0, 1.0, 1.0)


@pytest.mark.parametrize("case", golden_cases())
def test_default_engine_at_least_as_good_as_pdfminer(case: str) -> None:
    """On every golden file PDFium (auto) scores at least what pdfminer.six scores."""
    spec = expectations(case)
    assert score(_read(case, "auto"), spec).at_least(score(_read(case, "pdfminer"), spec))


def test_golden_pdfs_match_their_generator() -> None:
    """The committed PDFs and expectations are what make_golden.py writes.

    The PDFs are compared by their text, not their bytes: another ReportLab release
    may write the same pages differently.
    """
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, (data, expected) in module.cases().items():
        made = extract(data, filename=f"{name}.pdf").text
        assert made == _read(name, "auto"), f"{name}.pdf is stale: rerun make_golden.py"
        assert expectations(name) == expected
        assert len((GOLDEN / f"{name}.pdf").read_bytes()) < 20_000
