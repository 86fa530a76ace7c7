"""Shared helpers for the parsers tests: fixture folder, generators."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "tests" / "data" / "docs"


def load_generator() -> ModuleType:
    """The fixture generator module (tests/data/docs/make_fixtures.py)."""
    name = "make_fixtures"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, DOCS / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def case_files() -> list[Path]:
    """Every golden case in tests/data/docs (inputs, not their expectations)."""
    cases = []
    for path in sorted(DOCS.iterdir()):
        if path.suffix == ".py" or path.name.endswith(".expected.json"):
            continue
        stem = path.name.rsplit(".", 1)[0]
        if path.suffix == ".txt" and not (DOCS / f"{stem}.expected.json").exists():
            continue  # the expected text of another case
        cases.append(path)
    return cases
