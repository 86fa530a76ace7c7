"""Hostile and broken input: bombs, entities, truncation, bit flips, limits."""

from __future__ import annotations

import io
import time
import zipfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parsers_testkit import DOCS, case_files, load_generator

from parsers import ExtractResult, Limits, ParseStatus, extract

_INPUTS = {p.name: p.read_bytes() for p in case_files() if p.stat().st_size}
_QUICK = Limits(parse_timeout_s=10)


def _assert_well_formed(result: ExtractResult) -> None:
    assert isinstance(result.status, ParseStatus)
    assert result.message and "\n" not in result.message
    assert "(cid:" not in result.text


def test_declared_bomb_is_refused_before_inflating() -> None:
    """A DOCX declaring gigabytes is too_large in milliseconds, nothing inflated."""
    started = time.monotonic()
    result = extract((DOCS / "bomb.docx").read_bytes(), filename="bomb.docx")
    assert result.status is ParseStatus.TOO_LARGE
    assert time.monotonic() - started < 1


def test_real_bomb_is_refused_by_ratio() -> None:
    """A DOCX that really inflates 400 MB from a few hundred KB is never inflated."""
    bomb = load_generator().inflating_docx(400)
    started = time.monotonic()
    result = extract(bomb, filename="bomb.docx")
    assert result.status is ParseStatus.TOO_LARGE and "bomb" in result.message
    assert time.monotonic() - started < 1


def test_external_entity_is_not_resolved() -> None:
    """The XXE fixture's entity stays unresolved: no file content leaks into text."""
    result = extract((DOCS / "xxe.docx").read_bytes())
    assert result.status is ParseStatus.OK
    assert "root" not in result.text and "Before entity" in result.text


def test_over_size_limit_in_process() -> None:
    """extract() applies max_attachment_mb before looking at the content."""
    result = extract(b"x" * 2048, limits=Limits(max_attachment_mb=0.001))
    assert result.status is ParseStatus.TOO_LARGE and "limit" in result.message


def test_too_many_archive_members_are_bounded() -> None:
    """A zip with more members than allowed stops at the limit and says so."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for number in range(30):
            archive.writestr(f"note{number}.txt", f"note number {number}")
    result = extract(buffer.getvalue(), limits=Limits(max_archive_members=5))
    assert result.status is ParseStatus.OK
    assert len(result.parts) == 5
    assert any("skipped" in w for w in result.warnings)


def test_page_limit_stops_long_pdf() -> None:
    """A PDF over max_pages is too_large before any page is read."""
    result = extract(load_generator().long_pdf(12), limits=Limits(max_pages=10))
    assert result.status is ParseStatus.TOO_LARGE and result.pages == 12


def test_soft_deadline_reports_progress() -> None:
    """In-process, the time limit is checked between pages and reported."""
    result = extract(load_generator().long_pdf(300), limits=Limits(parse_timeout_s=0.05))
    assert result.status is ParseStatus.TIMEOUT
    assert "pages" in result.message


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(sorted(_INPUTS)), cut=st.floats(0.0, 1.0))
def test_truncated_files_get_a_status(name: str, cut: float) -> None:
    """Any prefix of any fixture ends with a status and a message, never an exception."""
    data = _INPUTS[name]
    _assert_well_formed(extract(data[: int(len(data) * cut)], filename=name, limits=_QUICK))


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(sorted(_INPUTS)), flips=st.lists(
    st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 7)), min_size=1,
    max_size=8))
def test_bit_flipped_files_get_a_status(name: str, flips: list[tuple[float, int]]) -> None:
    """Random bit flips in any fixture end with a status and a message."""
    data = bytearray(_INPUTS[name])
    for where, bit in flips:
        data[int(where * len(data))] ^= 1 << bit
    _assert_well_formed(extract(bytes(data), filename=name, limits=_QUICK))
