"""Run extractions in long-lived worker processes, isolated, bounded and in parallel.

Each worker is a process forked from a ``forkserver`` that has already imported the
parsers (so a worker starts in milliseconds and replacing one is cheap); it caps its
own address space with ``RLIMIT_AS`` (``parse_memory_mb``), then serves jobs over a
pipe until told to stop. The parent enforces the wall-clock limit: a worker still
busy ``parse_timeout_s`` after it got a job is killed (SIGKILL), the job is recorded
as ``timeout``, and a fresh worker takes its place. A worker that dies mid-job (for
example killed from outside, or by the kernel) yields ``failed`` and is replaced;
the parent only ever waits on pipes and process sentinels, with a timeout, so it
never hangs on a dead worker. Inside the worker the same limit is also checked
between pages and archive members, so a long PDF usually stops on its own with a
message saying how far it got; page-count and size limits stop large files before
any work starts.

A long PDF (by a cheap count of the page objects in its bytes: at least 48 pages, or
4 for pdfminer or a likely scan with OCR on) that is the last file of a run (nothing
else waits, so workers would idle) is read by several workers at once, each taking
every k-th page (interleaved: page cost is uneven, so contiguous halves
balance worse); the parent joins the shares (:func:`parsers.pdf.merge_shards`). Each
share is a job of its own, with the full time limit and the worker's memory cap.

An :class:`ExtractionPool` is not thread-safe: use it from one thread.
"""

from __future__ import annotations

import collections
import itertools
import logging
import multiprocessing
import os
import resource
import signal
import time
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any

from parsers import detect
from parsers.pdfpages import PdfPages
from parsers.result import MB, ExtractResult, Limits, ParseStatus

__all__ = ["ExtractJob", "ExtractionPool", "start_server"]

log = logging.getLogger(__name__)

_MB = MB
DEFAULT_LIMITS = Limits()
_KILL_GRACE_S = 1.0  # after the soft deadline, before the parent kills the worker
_PRELOAD = ["parsers.registry"]
# When a PDF is read by several workers. PDFium reads a plain page in 1-3 ms, so a
# share must be long to pay for sending the file to another worker and merging in the
# parent; pdfminer (~30 ms a page) and OCR (~2 s a page) gain on far shorter files.
_SPLIT_MIN_PAGES = 48
_PAGES_PER_SHARE = 24
_HEAVY_SPLIT_MIN_PAGES = 4
_HEAVY_PAGES_PER_SHARE = 2
_SCAN_BYTES_PER_PAGE = 40_000  # page images: likely a scan, OCRed page by page


@dataclass(frozen=True)
class ExtractJob:
    """One file to extract; ``key`` comes back with its result and is never sent."""

    key: Hashable
    data: bytes = field(repr=False)
    filename: str | None = None
    declared_type: str | None = None


def start_server() -> None:
    """Start the process the workers are forked from, without waiting for it.

    It loads the extractors (about 0.2 s) on another core while the caller goes on
    loading the rest of the program; the first :class:`ExtractionPool` then starts
    its workers from it at once. Harmless when no pool follows, and when called
    twice.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    from multiprocessing import forkserver

    forkserver.ensure_running()


def _worker_main(conn: Connection, limits: Limits) -> None:
    """Serve extraction jobs until the pipe closes or ``None`` arrives."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    logging.getLogger("pdfminer").setLevel(logging.ERROR)
    _cap_memory(limits.parse_memory_mb)
    from parsers.registry import extract

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        except MemoryError:
            conn.send((None, _memory_result(limits), _peak_rss_mb(), True))
            return
        if message is None:
            return
        number, data, filename, declared_type, share = message
        result: ExtractResult | PdfPages
        try:
            if share is None:
                result = extract(data, filename=filename, declared_type=declared_type,
                                 limits=limits)
            else:
                from parsers.pdf import read_shard

                result = read_shard(data, limits, *share)
        except MemoryError:
            result = _memory_result(limits)
        del data, message
        # After running out of memory, start afresh rather than carry a broken heap.
        retiring = (isinstance(result, ExtractResult) and result.status is ParseStatus.TOO_LARGE
                    and "memory" in result.message)
        conn.send((number, result, _peak_rss_mb(), retiring))
        if retiring:
            return


def _cap_memory(megabytes: int) -> None:
    try:
        with open("/proc/self/statm", "rb") as statm:
            current = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        current = 0
    cap = max(megabytes * _MB, current + 64 * _MB)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (ValueError, OSError):
        pass  # the platform refuses: the timeout still protects the parent


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _memory_result(limits: Limits) -> ExtractResult:
    return ExtractResult(
        status=ParseStatus.TOO_LARGE,
        message=f"Reading this file needed more than the {limits.parse_memory_mb} MB of "
        "memory allowed; please send a smaller file.")


@dataclass
class _Split:
    """A PDF read by ``step`` workers; ``parts`` by first page: pages or a failure."""

    job: ExtractJob
    step: int
    started: float
    parts: dict[int, Any] = field(default_factory=dict)


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    job: ExtractJob | None = None
    share: tuple[int, int] | None = None  # (first page, step) of a split PDF
    number: int = 0
    started: float = 0.0
    served: int = 0


class ExtractionPool:
    """Long-lived, isolated extraction workers; a context manager.

    Args:
        limits: applied to every job (timeout, memory cap, sizes).
        processes: number of workers; defaults to the usable CPU count.
    """

    def __init__(self, limits: Limits = DEFAULT_LIMITS, processes: int | None = None) -> None:
        self.limits = limits
        self.processes = max(1, processes or len(os.sched_getaffinity(0)) or 1)
        self.peak_worker_rss_mb = 0.0
        self.restarts = 0
        start_server()
        self._context = multiprocessing.get_context("forkserver")
        self._numbers = itertools.count(1)
        self._workers: list[_Worker] = [self._spawn() for _ in range(self.processes)]
        self._closed = False
        self._start_failures = 0
        self.splits = 0  # documents read by several workers
        self.busy_s = 0.0  # worker time spent on jobs, seen from here
        self._opened = time.monotonic()

    def __enter__(self) -> ExtractionPool:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def busy_share(self) -> float:
        """The share of the workers' time since the pool started spent on jobs (0 to 1):
        how well the caller keeps them fed."""
        elapsed = (time.monotonic() - self._opened) * self.processes
        return min(1.0, self.busy_s / elapsed) if elapsed > 0 else 0.0

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the current workers (for monitoring)."""
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    def close(self) -> None:
        """Stop every worker (politely, then by force). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self.busy_s:
            log.info("extraction workers busy %.0f%% of the time (%d workers, %.1f s)",
                     100 * self.busy_share(), self.processes,
                     time.monotonic() - self._opened)
        for worker in self._workers:
            try:
                worker.conn.send(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + 2.0
        for worker in self._workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(1.0)
            worker.conn.close()
        self._workers = []

    def extract(self, data: bytes, *, filename: str | None = None,
                declared_type: str | None = None) -> ExtractResult:
        """Extract one file in a worker; blocks until it is done or timed out."""
        job = ExtractJob(key=0, data=data, filename=filename, declared_type=declared_type)
        for _, result in self.extract_many([job]):
            return result
        raise AssertionError("extract_many yielded nothing")  # pragma: no cover

    def extract_many(self, jobs: Iterable[ExtractJob]
                     ) -> Iterator[tuple[ExtractJob, ExtractResult]]:
        """Run ``jobs`` on every worker at once; yield each result as it completes."""
        if self._closed:
            raise RuntimeError("the extraction pool is closed")
        queue = iter(jobs)
        # One job fetched ahead, while the workers are busy: a worker that finishes
        # gets its next job at once, not after the caller has prepared it.
        ahead: list[ExtractJob] = []
        exhausted = False
        shares: collections.deque[tuple[ExtractJob, tuple[int, int]]] = collections.deque()
        splits: dict[int, _Split] = {}
        try:
            while True:
                idle = [w for w in self._workers if w.job is None]
                while idle and (shares or ahead or not exhausted):
                    if shares:
                        split_job, share = shares.popleft()
                        self._dispatch(idle.pop(), split_job, share)
                        continue
                    job = ahead.pop() if ahead else next(queue, None)
                    if job is None:
                        exhausted = True
                        break
                    early = self._refuse(job)
                    if early is not None:
                        yield job, early
                        continue
                    step = self._share_count(job)
                    if step > 1:
                        # Only the last file is split: while others wait, every worker
                        # is busy anyway, and one file per worker wastes nothing on
                        # merging.
                        exhausted = not _fetch(queue, ahead)
                        if not exhausted:
                            step = 1
                    if step > 1:
                        self.splits += 1
                        splits[id(job)] = _Split(job, step, time.monotonic())
                        shares.extend((job, (first, step)) for first in range(1, step))
                        self._dispatch(idle.pop(), job, (0, step))
                    else:
                        self._dispatch(idle.pop(), job, None)
                if not idle and not ahead and not exhausted:
                    exhausted = not _fetch(queue, ahead)
                busy = [w for w in self._workers if w.job is not None]
                if not busy:
                    if exhausted and not shares and not ahead:
                        return
                    continue
                for done, part, result in self._collect(busy):
                    if part is None:
                        yield done, result
                        continue
                    split = splits[id(done)]
                    split.parts[part[0]] = result
                    if len(split.parts) == split.step:
                        del splits[id(done)]
                        yield done, self._merge(split)
        finally:
            for index, worker in enumerate(self._workers):
                if worker.job is not None:  # abandoned mid-job: its result has no reader
                    self._replace(index, kill=True)

    def _share_count(self, job: ExtractJob) -> int:
        """How many workers should read this file (more than one only for long PDFs)."""
        if self.processes < 2 or b"%PDF-" not in job.data[:1024]:
            return 1
        from parsers.pdfpages import page_count_hint  # no PDF library in this process

        pages = page_count_hint(job.data)
        if pages < 2:
            return 1
        heavy = self.limits.pdf_engine == "pdfminer" or (
            self.limits.ocr_enabled and len(job.data) / pages > _SCAN_BYTES_PER_PAGE)
        minimum, per_share = ((_HEAVY_SPLIT_MIN_PAGES, _HEAVY_PAGES_PER_SHARE) if heavy
                              else (_SPLIT_MIN_PAGES, _PAGES_PER_SHARE))
        if pages < minimum:
            return 1
        return max(1, min(self.processes, pages // per_share))

    def _merge(self, split: _Split) -> ExtractResult:
        from parsers.pdf import merge_shards

        parts = [split.parts[first] for first in range(split.step)]
        return merge_shards(parts, self.limits, split.started, split.job.filename,
                            split.job.declared_type)

    def _refuse(self, job: ExtractJob) -> ExtractResult | None:
        """Results decided without a worker (over the size limit: never sent)."""
        size_mb = len(job.data) / _MB
        if size_mb <= self.limits.max_attachment_mb:
            return None
        return ExtractResult(
            status=ParseStatus.TOO_LARGE, name=job.filename, declared_type=job.declared_type,
            detected_type=_safe_detect(job),
            message=f"This file is {size_mb:,.1f} MB, over the "
            f"{self.limits.max_attachment_mb:g} MB limit; please send a smaller file or "
            "split it.")

    def _dispatch(self, worker: _Worker, job: ExtractJob, share: tuple[int, int] | None
                  ) -> None:
        if not worker.process.is_alive():
            worker = self._replace(self._workers.index(worker))
        worker.number = next(self._numbers)
        worker.job = job
        worker.share = share
        worker.started = time.monotonic()
        try:
            worker.conn.send((worker.number, job.data, job.filename, job.declared_type, share))
        except (OSError, ValueError):
            pass  # the worker died; its sentinel reports it in _collect

    def _collect(self, busy: list[_Worker]
                 ) -> Iterator[tuple[ExtractJob, tuple[int, int] | None, Any]]:
        limit = self.limits.parse_timeout_s + _KILL_GRACE_S
        now = time.monotonic()
        wait_s = max(0.0, min(w.started + limit for w in busy) - now)
        handles: list[Any] = [w.conn for w in busy] + [w.process.sentinel for w in busy]
        ready = set(wait(handles, timeout=wait_s))
        now = time.monotonic()
        for worker in busy:
            index = self._workers.index(worker)
            job, share = worker.job, worker.share
            assert job is not None
            if worker.conn in ready or worker.process.sentinel in ready or (
                    now >= worker.started + limit):
                self.busy_s += now - worker.started
            if worker.conn in ready or (worker.process.sentinel in ready and worker.conn.poll()):
                try:
                    number, result, rss, retiring = worker.conn.recv()
                except (EOFError, OSError):
                    number, result, rss, retiring = worker.number, None, 0.0, True
                self.peak_worker_rss_mb = max(self.peak_worker_rss_mb, rss)
                worker.job = None
                worker.served += 1
                self._start_failures = 0
                if result is None:
                    result = self._crashed(job, worker)
                    self._replace(index, kill=True)
                elif retiring or number is None or not worker.process.is_alive():
                    self._replace(index)
                yield job, share, _named(result, job) if share is None else result
            elif worker.process.sentinel in ready:
                worker.job = None
                self._check_start_failures(worker)
                result = self._crashed(job, worker)
                self._replace(index, kill=True)
                yield job, share, result
            elif now >= worker.started + limit:
                worker.job = None
                self._replace(index, kill=True)
                yield job, share, self._timed_out(job)

    def _check_start_failures(self, worker: _Worker) -> None:
        """Refuse to loop forever when fresh workers die before serving any job."""
        if worker.served:
            return
        self._start_failures += 1
        if self._start_failures >= 3:
            raise RuntimeError(
                "extraction workers die as they start; the main module must be safe to "
                "import (guard the program's entry point with if __name__ == '__main__')")

    def _spawn(self) -> _Worker:
        parent, child = self._context.Pipe(duplex=True)
        process = self._context.Process(target=_worker_main, args=(child, self.limits),
                                        name="parsers-worker", daemon=True)
        process.start()
        child.close()
        return _Worker(process=process, conn=parent)

    def _replace(self, index: int, kill: bool = False) -> _Worker:
        old = self._workers[index]
        if kill and old.process.is_alive():
            old.process.kill()
        old.process.join(2.0)
        if old.process.is_alive():
            old.process.kill()
            old.process.join(2.0)
        old.conn.close()
        self.restarts += 1
        self._workers[index] = self._spawn()
        return self._workers[index]

    def _crashed(self, job: ExtractJob, worker: _Worker) -> ExtractResult:
        worker.process.join(1.0)
        code = worker.process.exitcode
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return ExtractResult(
            status=ParseStatus.FAILED, name=job.filename, declared_type=job.declared_type,
            detected_type=_safe_detect(job), elapsed_s=time.monotonic() - worker.started,
            message=f"The reader stopped unexpectedly ({how}) while reading this file; "
            "staff will look at it by hand.")

    def _timed_out(self, job: ExtractJob) -> ExtractResult:
        return ExtractResult(
            status=ParseStatus.TIMEOUT, name=job.filename, declared_type=job.declared_type,
            detected_type=_safe_detect(job), elapsed_s=self.limits.parse_timeout_s,
            message=f"Reading this file took longer than {self.limits.parse_timeout_s:g} s "
            "and was stopped; staff will look at it by hand.")


def _fetch(queue: Iterator[ExtractJob], ahead: list[ExtractJob]) -> bool:
    """Move the caller's next job into ``ahead``; False when there is none left."""
    following = next(queue, None)
    if following is not None:
        ahead.append(following)
    return following is not None


def _named(result: ExtractResult, job: ExtractJob) -> ExtractResult:
    if result.name == job.filename and result.declared_type == job.declared_type:
        return result
    from dataclasses import replace

    return replace(result, name=job.filename, declared_type=job.declared_type)


def _safe_detect(job: ExtractJob) -> str:
    try:
        return detect.detect_type(job.data[: 64 * _MB], job.filename, job.declared_type)
    except Exception:  # noqa: BLE001 - a status line must never fail on detection
        return detect.OCTET
