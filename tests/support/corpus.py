"""Third-party test files: the MIT-licensed subset kept in the repository, and the full
corpus when a run asks for it.

``tests/data/corpus/`` (with its ``NOTICE`` and ``MANIFEST.tsv``) is always there, so
every test over these files has cases on a fresh clone. The full corpus of the
project's neighbours (about 200 files, some under licences that do not allow copying
them here) is added only when ``INTAKE_TEST_CORPUS`` names its folder; a run that
names a folder that is not there fails at once instead of quietly testing less.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

__all__ = ["CORPUS_ENV", "REPO_CORPUS", "CorpusMissing", "corpus_files", "corpus_roots", "notes"]

CORPUS_ENV = "INTAKE_TEST_CORPUS"
REPO_CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"


class CorpusMissing(RuntimeError):
    """Raised when ``INTAKE_TEST_CORPUS`` names a folder that does not exist."""


def corpus_roots() -> list[Path]:
    """The corpus folders of this run: the repository's, then the full one if asked for."""
    roots = [REPO_CORPUS]
    named = os.environ.get(CORPUS_ENV, "").strip()
    if named:
        extra = Path(named).expanduser().resolve()
        if not (extra / "MANIFEST.tsv").is_file():
            raise CorpusMissing(
                f"{CORPUS_ENV}={named!r}: no corpus there (no MANIFEST.tsv); "
                f"unset {CORPUS_ENV} to test the repository's own files only"
            )
        roots.append(extra)
    return roots


def corpus_files(pattern: str = "*/*") -> dict[str, Path]:
    """``{"folder/name": path}`` of every corpus file matching ``pattern``, each name once
    (the repository's copy first)."""
    found: dict[str, Path] = {}
    for root in corpus_roots():
        for path in sorted(root.glob(pattern)):
            if path.is_file():
                found.setdefault(str(path.relative_to(root)), path)
    return dict(sorted(found.items()))


def notes() -> dict[str, str]:
    """The manifests' notes on each file, by ``folder/name``."""
    found: dict[str, str] = {}
    for root in corpus_roots():
        with (root / "MANIFEST.tsv").open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                found.setdefault(row["file"], row["notes"])
    return found
