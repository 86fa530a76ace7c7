"""The third-party corpus through the worker pool.

The corpus is the MIT-licensed files kept in tests/data/corpus (always there), plus
the full corpus when ``INTAKE_TEST_CORPUS`` names it (tests/support/corpus.py). Every
file must end with a status within its time limit, the pool must survive (the slow
PDF is killed by the timeout and the next file goes on), nothing may end 'failed'
(that would be a bug of ours), and statuses must agree with the manifests' notes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from parsers import ExtractionPool, ExtractJob, ExtractResult, Limits, ParseStatus
from tests.support.corpus import REPO_CORPUS, corpus_files, corpus_roots, notes

_TIMEOUT_S = 8.0
pytestmark = pytest.mark.slow


def _files() -> list[str]:
    return list(corpus_files())


@pytest.fixture(scope="module")
def corpus_results() -> Iterator[dict[str, tuple[ExtractResult, float]]]:
    files = _files()
    results: dict[str, tuple[ExtractResult, float]] = {}
    with ExtractionPool(Limits(parse_timeout_s=_TIMEOUT_S), processes=2) as pool:
        paths = corpus_files()
        jobs = [ExtractJob(name, paths[name].read_bytes(), name.split("/", 1)[1])
                for name in files]
        started = time.monotonic()
        for job, result in pool.extract_many(jobs):
            results[str(job.key)] = (result, time.monotonic() - started)
        # The pool survives the whole corpus and still works.
        assert pool.extract(b"still alive").status is ParseStatus.OK
    yield results


def test_every_corpus_file_gets_a_status(
        corpus_results: dict[str, tuple[ExtractResult, float]]) -> None:
    """Every file comes back once, with a status and a one-line message, none 'failed'."""
    # Never vacuous: the repository's own files are always among them.
    assert {str(p.relative_to(REPO_CORPUS)) for p in REPO_CORPUS.glob("*/*")} <= set(corpus_results)
    assert sorted(corpus_results) == _files()
    for name, (result, _) in corpus_results.items():
        assert result.message and "\n" not in result.message, name
        assert result.status is not ParseStatus.FAILED, (name, result.message)
        assert result.elapsed_s <= _TIMEOUT_S + 2, name
        assert "(cid:" not in result.text, name
        if result.status is ParseStatus.TIMEOUT:
            assert name == "pdf/tika__testPDF_childAttachments.pdf", name


def _expected(name: str, note: str) -> set[ParseStatus] | None:
    """Statuses the manifest's note allows for a file, or None when it says nothing."""
    folder = name.split("/", 1)[0]
    lowered = note.lower()
    if folder == "emails":
        return None
    if ("encrypted" in lowered or "password" in lowered) and not any(
            s in lowered for s in ("empty user password", "without /id", "irm")):
        return {ParseStatus.ENCRYPTED}
    if any(s in lowered for s in ("scanned", "no text layer", "image only")):
        return {ParseStatus.NEEDS_OCR}
    if "(cid:nn)" in lowered:
        return {ParseStatus.GARBLED, ParseStatus.OK}  # OK only with a warning (below)
    if any(s in lowered for s in ("truncated", "not a valid pdf", "no /root", "not a zip",
                                  "corrupt zip", "bad crc", "bad magic number")):
        return {ParseStatus.CORRUPT}
    if "empty rtf" in lowered or "blank page" in lowered:
        return {ParseStatus.EMPTY}
    if "wordperfect" in lowered:
        return {ParseStatus.CORRUPT, ParseStatus.UNSUPPORTED}
    if "python-docx: ok" in lowered or "pdfminer: ok" in lowered:
        return {ParseStatus.OK, ParseStatus.GARBLED, ParseStatus.TIMEOUT}
    return None


def test_statuses_agree_with_manifest_notes(
        corpus_results: dict[str, tuple[ExtractResult, float]]) -> None:
    """encrypted -> encrypted, scanned -> needs_ocr, (cid:NN) -> garbled, broken -> corrupt."""
    mismatches = []
    checked = 0
    for name, note in notes().items():
        result = corpus_results[name][0]
        allowed = _expected(name, note)
        if allowed is None:
            continue
        checked += 1
        # PDFium opens some files pdfminer refuses (a damaged trailer, an empty user
        # password): reading them is not a mismatch.
        recovered = "pdfminer: raises" in note.lower() and (
            (result.status is ParseStatus.OK and "pdfium" in (result.engine or ""))
            or (result.status is ParseStatus.EMPTY and "blank" in result.message)
        )
        if result.status not in allowed and not recovered:
            mismatches.append(f"{name}: {result.status.value} ({note})")
        if "(cid:nn)" in note.lower() and result.status is ParseStatus.OK:
            # pdfminer leaves (cid:NN) for fonts without a map and we say so; PDFium
            # decodes many of those fonts itself, and then there is nothing to say.
            decoded = "pdfium" in (result.engine or "") and "(cid:" not in result.text
            assert decoded or any("could not be decoded" in w for w in result.warnings), name
    assert not mismatches, "\n".join(mismatches)
    assert checked >= 15  # the repository's own files alone give 18


# Files the manifests call readable, kept in the repository, then from the full corpus.
_GOOD_HERE = ("pdf/pdfminer__simple1.pdf", "pdf/pdfminer__jo.pdf", "docx/pydocx__test.docx",
              "docx/pydocx__par-hyperlinks.docx", "emails/mikelmail__attachment_pdf.eml")
_GOOD_FULL = ("pdf/alaveteli__psni.pdf", "docx/poi__delins.docx",
              "other/paperless__sample.doc", "other/tika__testWINMAIL.dat",
              "other/tika__testMSG_att_doc.msg", "other/tika__testRTFJapanese.rtf",
              "other/tika__testOpenOffice2.odt", "emails/phpmmp__issue274.eml")


def test_known_good_texts(corpus_results: dict[str, tuple[ExtractResult, float]]) -> None:
    """Files the manifest calls readable give text (spot checks across formats)."""
    names = _GOOD_HERE + (_GOOD_FULL if len(corpus_roots()) > 1 else ())
    for name in names:
        result = corpus_results[name][0]
        assert result.status is ParseStatus.OK and len(result.text.strip()) > 5, name
