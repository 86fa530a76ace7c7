"""The isolated worker pool: timeouts, crashes, memory cap, parallel results."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from importlib import metadata

import pytest
from parsers_testkit import DOCS, load_generator

from parsers import ExtractionPool, ExtractJob, Limits, ParseStatus


@pytest.fixture(scope="module")
def pool() -> Iterator[ExtractionPool]:
    with ExtractionPool(Limits(parse_timeout_s=3.0), processes=2) as running:
        yield running


@pytest.fixture(scope="module")
def slow_pool() -> Iterator[ExtractionPool]:
    """Workers reading PDFs with pdfminer.six, which takes seconds over slow_pdf()
    (PDFium reads it in about one, too close to the limit to test the kill)."""
    with ExtractionPool(Limits(parse_timeout_s=3.0, pdf_engine="pdfminer"),
                        processes=2) as running:
        yield running


def test_result_carries_parser_name_and_version(pool: ExtractionPool) -> None:
    """A PDF read in a worker names PDFium's binding, its installed version and engine."""
    result = pool.extract((DOCS / "plain.pdf").read_bytes(), filename="plain.pdf")
    assert result.status is ParseStatus.OK
    assert result.parser == "pypdfium2"
    assert result.parser_version == metadata.version("pypdfium2")
    assert result.engine == "pdfium"
    assert result.name == "plain.pdf" and result.pages == 1


def test_extract_many_returns_every_job_with_its_key(pool: ExtractionPool) -> None:
    """Jobs run in parallel; each comes back once, paired with its own job."""
    names = ["plain.pdf", "features.docx", "housing.odt", "table.pdf", "letter.rtf",
             "user_password.pdf", "photo.png", "forwarded.eml"]
    jobs = [ExtractJob(key=i, data=(DOCS / n).read_bytes(), filename=n)
            for i, n in enumerate(names)]
    results = dict((job.key, result) for job, result in pool.extract_many(jobs))
    assert sorted(results) == list(range(len(names)))
    assert results[5].status is ParseStatus.ENCRYPTED
    assert results[6].status is ParseStatus.NEEDS_OCR
    assert all(results[i].name == names[i] for i in results)


def test_timeout_kills_worker_and_next_job_succeeds(slow_pool: ExtractionPool) -> None:
    """A page that takes too long is killed by the parent; the pool goes on."""
    pool = slow_pool
    slow = load_generator().slow_pdf(100_000)
    plain = (DOCS / "plain.pdf").read_bytes()
    before = pool.restarts
    started = time.monotonic()
    jobs = [ExtractJob("slow", slow, "slow.pdf"), ExtractJob("plain", plain, "plain.pdf")]
    results = {job.key: result for job, result in pool.extract_many(jobs)}
    assert results["slow"].status is ParseStatus.TIMEOUT
    assert "longer than 3 s" in results["slow"].message
    assert results["plain"].status is ParseStatus.OK
    assert time.monotonic() - started < 10
    assert pool.restarts > before
    assert pool.extract(plain).status is ParseStatus.OK


def test_worker_killed_mid_job_is_replaced(slow_pool: ExtractionPool) -> None:
    """SIGKILL from outside turns the job into 'failed'; the parent never hangs."""
    pool = slow_pool
    slow = load_generator().slow_pdf(100_000)
    killer = threading.Timer(0.7, lambda: [os.kill(pid, signal.SIGKILL)
                                            for pid in pool.worker_pids])
    killer.start()
    try:
        result = pool.extract(slow, filename="slow.pdf")
    finally:
        killer.cancel()
    assert result.status is ParseStatus.FAILED
    assert "stopped unexpectedly" in result.message and "signal 9" in result.message
    assert pool.extract((DOCS / "plain.pdf").read_bytes()).status is ParseStatus.OK


def test_abandoned_iteration_leaves_pool_usable(pool: ExtractionPool) -> None:
    """Breaking out of extract_many early does not wedge the pool."""
    plain = (DOCS / "plain.pdf").read_bytes()
    jobs = (ExtractJob(i, plain) for i in range(6))
    for _job, _result in pool.extract_many(jobs):
        break
    assert pool.extract(plain).status is ParseStatus.OK


def test_over_size_limit_is_refused_without_a_worker() -> None:
    """A file over max_attachment_mb is too_large with a message naming the limit."""
    with ExtractionPool(Limits(max_attachment_mb=0.0005), processes=1) as small:
        result = small.extract((DOCS / "plain.pdf").read_bytes(), filename="plain.pdf")
    assert result.status is ParseStatus.TOO_LARGE
    assert "limit" in result.message and result.detected_type == "application/pdf"


def test_memory_cap_turns_runaway_into_status() -> None:
    """A bomb let past the zip checks hits the memory cap: a status, not a crash."""
    bomb = load_generator().inflating_docx(400)
    limits = Limits(parse_memory_mb=300, max_inflate_ratio=1e9, max_inflated_mb=1e6,
                    parse_timeout_s=30)
    with ExtractionPool(limits, processes=1) as capped:
        result = capped.extract(bomb, filename="bomb.docx")
        assert result.status in (ParseStatus.TOO_LARGE, ParseStatus.FAILED)
        assert result.message
        after = capped.extract((DOCS / "features.docx").read_bytes())
        assert after.status is ParseStatus.OK
        assert capped.peak_worker_rss_mb < 400


def test_closed_pool_refuses_work() -> None:
    """close() is idempotent and a closed pool says so instead of hanging."""
    running = ExtractionPool(processes=1)
    running.close()
    running.close()
    with pytest.raises(RuntimeError):
        running.extract(b"text")


def test_busy_share_counts_the_workers_time_on_jobs(caplog: pytest.LogCaptureFixture) -> None:
    """The pool counts how long its workers spent on jobs: none before any job, some
    after one, falling while they wait, and logged when the pool closes."""
    data = (DOCS / "plain.pdf").read_bytes()
    with ExtractionPool(Limits(parse_timeout_s=10.0), processes=1) as fresh:
        assert fresh.busy_s == 0.0 and fresh.busy_share() == 0.0
        started = time.monotonic()
        assert fresh.extract(data, filename="plain.pdf").status is ParseStatus.OK
        took = time.monotonic() - started
        assert 0.0 < fresh.busy_s <= took
        after_job = fresh.busy_share()
        assert 0.0 < after_job <= 1.0
        time.sleep(0.2)
        assert fresh.busy_share() < after_job
        with caplog.at_level("INFO", logger="parsers.pool"):
            fresh.close()
    assert any("extraction workers busy" in r.getMessage() for r in caplog.records)


def test_a_job_is_handed_out_before_the_next_one_is_prepared(pool: ExtractionPool) -> None:
    """The caller's next job is prepared while the workers are busy: when the pool
    asks for job k+1, job k is already with a worker (or done), so a worker that
    finishes never waits for the caller to prepare its next job."""
    data = (DOCS / "letter.rtf").read_bytes()
    made: list[ExtractJob] = []
    waiting: list[int] = []  # jobs made but not yet with a worker when the next was asked

    def jobs() -> Iterator[ExtractJob]:
        for number in range(12):
            if made:
                held = [w.job for w in pool._workers if w.job is not None]
                last = made[-1]
                if last.key not in done and not any(job is last for job in held):
                    waiting.append(int(last.key))  # type: ignore[call-overload]
            made.append(ExtractJob(key=number, data=data, filename="letter.rtf"))
            yield made[-1]

    done: set[object] = set()
    for job, result in pool.extract_many(jobs()):
        assert result.status is ParseStatus.OK
        done.add(job.key)
    assert done == set(range(12))
    assert waiting == []
