"""Golden fixtures: every tests/data/docs/<case>.<ext> against <case>.txt or .expected.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from parsers_testkit import DOCS, case_files, load_generator

from parsers import ParseStatus, extract


def _expectation(path: Path) -> dict[str, object]:
    stem = path.name.rsplit(".", 1)[0]
    spec_file = DOCS / f"{stem}.expected.json"
    if spec_file.exists():
        return dict(json.loads(spec_file.read_text(encoding="utf-8")))
    return {"status": "ok", "text": (DOCS / f"{stem}.txt").read_text(encoding="utf-8")}


@pytest.mark.parametrize("path", case_files(), ids=lambda p: p.name)
def test_golden_case(path: Path) -> None:
    """Each fixture ends with the expected status and text, with a one-line message."""
    spec = _expectation(path)
    result = extract(path.read_bytes(), filename=path.name, declared_type="application/x-test")
    assert result.status == ParseStatus(spec["status"]), result.message
    assert result.message and "\n" not in result.message
    assert result.name == path.name
    assert result.declared_type == "application/x-test"
    if "text" in spec:
        assert result.text == spec["text"]
    for needle in spec.get("contains", []):  # type: ignore[union-attr]
        assert needle in result.text + result.message, needle
    for needle in spec.get("not_contains", []):  # type: ignore[union-attr]
        assert needle not in result.text, needle
    if "detected_type" in spec:
        assert result.detected_type == spec["detected_type"]
    if result.status is ParseStatus.OK:
        assert result.parser and result.parser_version


def test_fixtures_match_their_generator() -> None:
    """The committed fixtures are exactly what make_fixtures.py writes."""
    generated = load_generator().all_fixtures()
    for name, data in generated.items():
        assert (DOCS / name).read_bytes() == data, f"{name} is stale: rerun make_fixtures.py"
        assert len(data) < 50_000


def test_every_case_has_an_expectation() -> None:
    """A new input without <case>.txt or <case>.expected.json is a mistake."""
    for path in case_files():
        stem = path.name.rsplit(".", 1)[0]
        assert (DOCS / f"{stem}.txt").exists() or (DOCS / f"{stem}.expected.json").exists()
