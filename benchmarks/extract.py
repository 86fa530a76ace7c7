"""Benchmark text extraction: per format, in-process versus isolated workers, scaling.

Run from the repository root: ``python benchmarks/extract.py`` (``--quick`` for a
shorter run). Inputs are generated with the fixture generator in tests/data/docs, so
nothing outside the repository is needed. Prints a table of documents/s and pages/s
per format, the isolation overhead on a 3-page PDF, the speed-up of a 200-document
mixed batch on 2 workers over 1, and the peak RSS of the workers.
Targets (2 cores): overhead <= 15 %, speed-up >= 1.7x, worker peak < 300 MB.
Then, from ``benchmarks/pdfbench.py``: PDF pages/s per engine (PDFium, pdfminer.six,
the pool) next to poppler's ``pdftotext`` on the same generated responses, and the
quality of each engine's text on the golden PDFs in tests/data/pdf.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from parsers import ExtractionPool, ExtractJob, Limits, ParseStatus, extract  # noqa: E402


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_fixtures", REPO / "tests" / "data" / "docs" / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _long_docx(gen: ModuleType, paragraphs: int) -> bytes:
    body = "".join(gen._p(gen._r(f"Paragraph {i}: we would like the council to consider "
                                 "longer opening hours for the library and the pool."))
                   for i in range(paragraphs))
    return bytes(gen.make_docx(body))


def _rate(function: Callable[[], object], repeat: int) -> float:
    """Seconds per call, best of three rounds of ``repeat`` calls."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(repeat):
            function()
        best = min(best, (time.perf_counter() - started) / repeat)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    repeat = 5 if args.quick else 20
    gen = _generator()
    fixtures = gen.all_fixtures()
    pdf3 = gen.long_pdf(3)
    inputs: dict[str, tuple[bytes, int]] = {
        "pdf (3 pages)": (pdf3, 3),
        "pdf (30 pages)": (gen.long_pdf(30), 30),
        "docx (~10 pages)": (_long_docx(gen, 300), 10),
        "docx (features)": (fixtures["features.docx"], 1),
        "odt": (fixtures["housing.odt"], 1),
        "rtf": (fixtures["letter.rtf"], 1),
        "html": (fixtures["page.html"], 1),
        "xlsx": (fixtures["answers.xlsx"], 1),
        "eml (docx+pdf)": (fixtures["forwarded.eml"], 1),
        "zip (docx)": (fixtures["bundle.zip"], 1),
    }
    print(f"{'input':<20}{'mode':<12}{'docs/s':>10}{'pages/s':>10}{'ms/doc':>10}")
    print("-" * 62)
    with ExtractionPool(processes=1) as single:
        for label, (data, pages) in inputs.items():
            reps = max(1, repeat // (10 if pages >= 30 else 1))
            for mode, run in (("in-process", lambda d=data: extract(d)),
                              ("worker", lambda d=data: single.extract(d))):
                seconds = _rate(run, reps)
                print(f"{label:<20}{mode:<12}{1 / seconds:>10.1f}{pages / seconds:>10.1f}"
                      f"{seconds * 1000:>10.1f}")
        inproc = _rate(lambda: extract(pdf3), repeat * 2)
        pooled = _rate(lambda: single.extract(pdf3), repeat * 2)
        overhead = (pooled - inproc) / inproc
        single_peak = single.peak_worker_rss_mb

    batch = []
    for number in range(200):
        if number % 2:
            batch.append(ExtractJob(number, gen.long_pdf(3 + number % 8), f"{number}.pdf"))
        else:
            batch.append(ExtractJob(number, _long_docx(gen, 60 + number % 120),
                                    f"{number}.docx"))
    timings = {}
    peaks = [single_peak]
    for processes in (1, 2):
        with ExtractionPool(processes=processes) as pool:
            started = time.perf_counter()
            results = [r for _, r in pool.extract_many(batch)]
            timings[processes] = time.perf_counter() - started
            assert all(r.status is ParseStatus.OK for r in results)
            peaks.append(pool.peak_worker_rss_mb)
    speedup = timings[1] / timings[2]

    # Peak memory on heavy inputs: a long PDF, a big DOCX, a refused bomb.
    with ExtractionPool(Limits(parse_timeout_s=120), processes=1) as heavy:
        for data in (gen.long_pdf(150), _long_docx(gen, 20_000), gen.inflating_docx(400)):
            heavy.extract(data)
        peaks.append(heavy.peak_worker_rss_mb)

    print()
    print(f"{'measure':<48}{'value':>12}{'target':>12}")
    print("-" * 72)
    print(f"{'3-page PDF in-process (ms)':<48}{inproc * 1000:>12.1f}")
    print(f"{'3-page PDF through a worker (ms)':<48}{pooled * 1000:>12.1f}")
    print(f"{'isolation overhead':<48}{overhead:>12.1%}{'<= 15%':>12}")
    print(f"{'200 mixed PDF/DOCX, 1 worker (s)':<48}{timings[1]:>12.2f}")
    print(f"{'200 mixed PDF/DOCX, 2 workers (s)':<48}{timings[2]:>12.2f}")
    print(f"{'speed-up 2 workers vs 1':<48}{speedup:>11.2f}x{'>= 1.7x':>12}")
    print(f"{'200 mixed, 2 workers (docs/s)':<48}{200 / timings[2]:>12.1f}")
    print(f"{'peak worker RSS (MB, all runs incl. 150 pages)':<48}{max(peaks):>12.0f}"
          f"{'< 300':>12}")
    _pdf_engines(args.quick)


def _pdf_engines(quick: bool) -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    import tempfile

    import pdfbench

    docs = pdfbench.response_set(24 if quick else 96)
    print()
    print(f"PDF engines on {len(docs)} generated responses, "
          f"{sum(p for _, _, p in docs)} pages (same files for every row)")
    print(f"{'engine':<66}{'pages/s':>10}{'x pdftotext':>13}{'pages/CPU s':>13}")
    print("-" * 102)
    with tempfile.TemporaryDirectory(prefix="pdf-engines-") as folder:
        for label, rate, ratio, cpu in pdfbench.engine_rows(docs, Path(folder)):
            per_cpu = "" if cpu is None else f"{cpu:,.0f}"
            print(f"{label:<66}{rate:>10,.0f}{ratio:>13.2f}{per_cpu:>13}")
    print()
    print(f"{'golden PDF':<14}{'engine':<12}found / order / hyphens / clean")
    print("-" * 60)
    for case, engine, value in pdfbench.quality_rows():
        print(f"{case:<14}{engine:<12}{value}")


if __name__ == "__main__":
    main()
