"""One poll cycle in a fresh process, as ``intake poll`` runs it, with its costs.

``python benchmarks/cycle.py CONFIG [--profile FILE]`` prints one JSON object: wall
time of the cycle and of its phases (fetch and store, read, acknowledgements), what
it did, and the peak RSS of this process and of the extraction workers. Run by
``benchmarks/run.py``; a separate process so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import functools
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from intake.app import App  # noqa: E402
from intake.config import load_settings  # noqa: E402
from intake.worker import holder_id, run_cycle  # noqa: E402
from parsers import ExtractionPool  # noqa: E402


class _MeasuredApp(App):
    """The App, keeping hold of the extraction pools it makes (for their peak RSS)."""

    pools: list[ExtractionPool]

    def make_pool(self) -> ExtractionPool:
        pool = super().make_pool()
        self.pools.append(pool)
        return pool


def _peak_mb() -> float:
    """This process's peak RSS since it started (VmHWM).

    Not ``ru_maxrss``: Linux carries the parent's RSS over a fork+exec into it, so a
    child of a big benchmark process would report the parent's size.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(phases: dict[str, float], peaks: dict[str, float], name: str, function: Any) -> Any:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            phases[name] = phases.get(name, 0.0) + time.perf_counter() - started
            peaks[name] = max(peaks.get(name, 0.0), _peak_mb())

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", type=Path)
    parser.add_argument("--profile", type=Path, help="write cProfile stats here")
    args = parser.parse_args()
    app = _MeasuredApp(load_settings(args.config, os.environ))
    app.pools = []
    phases: dict[str, float] = {}
    peaks: dict[str, float] = {}  # peak RSS of this process when each phase last ended
    app.engine  # noqa: B018 - open (and create) the database before the clock starts
    profiler = cProfile.Profile() if args.profile else None
    started = time.perf_counter()
    with app.pipeline() as pipeline:
        pipeline.store_fetched = _timed(phases, peaks, "store", pipeline.store_fetched)  # type: ignore[method-assign]
        pipeline.read_pending = _timed(phases, peaks, "read", pipeline.read_pending)  # type: ignore[method-assign]
        pipeline.send_acks = _timed(phases, peaks, "acks", pipeline.send_acks)  # type: ignore[method-assign]
        if profiler is not None:
            profiler.enable()
        report = run_cycle(pipeline, app.inbox_factory(), holder=holder_id(),
                           lease_ttl=dt.timedelta(minutes=30))
        if profiler is not None:
            profiler.disable()
        wall = time.perf_counter() - started
        workers = max((p.peak_worker_rss_mb for p in app.pools), default=0.0)
        restarts = sum(p.restarts for p in app.pools)
    if profiler is not None:
        profiler.dump_stats(str(args.profile))
    app.close()
    phases["fetch_and_store"] = wall - phases.get("read", 0.0) - phases.get("acks", 0.0)
    print(json.dumps({
        "wall_s": wall,
        "phases_s": phases,
        "stored": report.stored,
        "duplicates": report.duplicates,
        "read": report.read.read,
        "failed": report.read.failed,
        "attachments": report.read.attachments,
        "acks_sent": report.acks.sent,
        "acks_failed": report.acks.failed,
        "ack_errors": report.acks.errors[:3],
        "main_peak_rss_mb": _peak_mb(),
        "main_peak_rss_after_mb": peaks,
        "worker_peak_rss_mb": workers,
        "worker_restarts": restarts,
    }))


if __name__ == "__main__":
    main()
