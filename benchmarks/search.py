"""Benchmark full-text search at 100,000 responses on SQLite (FTS5) and PostgreSQL.

Run from the repository root (heavy: a few minutes, about 1 GB of disk)::

    .venv/bin/python benchmarks/search.py                  # 100,000 responses, both engines
    .venv/bin/python benchmarks/search.py --docs 5000 --no-postgres   # a smoke run

It stores ``--docs`` synthetic responses of about 450 words (a Zipf-like vocabulary of
20,000 made-up words and 60 common English ones), with known frequencies for a few
words, then measures what ``intake search --rebuild`` and ``intake search`` do:

- index build: ``intake.staff.search.rebuild`` over every stored response, and the
  index's size on disk;
- p50/p95 over ``--repeat`` runs of ``intake.staff.search.search`` (ranked top 20 with
  snippets and the response's details) for one word in 22% of responses, an exact
  phrase (0.5%), an OR of two words (10% and 8%), a word in 99.5% of responses, and
  ``count`` for the one word.

Targets: p95 under 50 ms on SQLite and 100 ms on PostgreSQL (250 ms for the word in
nearly every response); the build under 60 s. PostgreSQL is the server at
127.0.0.1:5432 (database ``test``), in a schema of its own dropped afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from intake.staff.search import count, rebuild, search  # noqa: E402
from store import search as index  # noqa: E402
from store.db import make_session_factory, open_database  # noqa: E402
from store.models import Submission  # noqa: E402

POSTGRES = os.environ.get(
    "INTAKE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
WORDS_PER_DOC = 450
# word: share of responses that contain it (inserted once, at a random place)
PLANTED = {"parking": 0.22, "library": 0.10, "housing": 0.08, "council": 0.995}
PHRASE, PHRASE_SHARE = "keep the reading room open", 0.005
QUERIES = {
    "one word (22%)": "parking",
    "exact phrase (0.5%)": f'"{PHRASE}"',
    "OR of two words (10%, 8%)": "library OR housing",
    "word in 99.5%": "council",
}
COMMON = (
    "the of and to a in that is for it as was with be by on not he this are or his from at "
    "which but have an they you were her she there one all we their been has more if would "
    "will when who so no can said about out up some what its into them only other than"
).split()


def _vocabulary(rng: random.Random) -> tuple[list[str], list[float]]:
    syllables = ["ka", "lo", "mi", "ter", "an", "sol", "ve", "ri", "dun", "pa", "gor", "eth"]
    made_up = sorted(
        {"".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(30000)}
    )[:20000]
    words = COMMON + made_up
    weights = [40.0 / (rank + 1) for rank in range(len(COMMON))]
    weights += [1.0 / (rank + 10) ** 0.9 for rank in range(len(made_up))]
    return words, weights


def _documents(number: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)  # noqa: S311 - test data
    words, weights = _vocabulary(rng)
    cumulative = []
    total = 0.0
    for weight in weights:
        total += weight
        cumulative.append(total)
    docs = []
    for _ in range(number):
        body = rng.choices(words, cum_weights=cumulative, k=WORDS_PER_DOC)
        for word, share in PLANTED.items():
            if rng.random() < share:
                body[rng.randrange(WORDS_PER_DOC)] = word
        if rng.random() < PHRASE_SHARE:
            at = rng.randrange(WORDS_PER_DOC - 5)
            body[at : at + 5] = PHRASE.split()
        docs.append(" ".join(body))
    return docs


def _fill(sessions: sessionmaker[Session], docs: list[str]) -> None:
    start = dt.datetime(2018, 6, 1, tzinfo=dt.UTC)
    table = Submission.__table__
    with sessions() as session:
        for first in range(0, len(docs), 5000):
            rows = []
            for number in range(first + 1, min(first + 5000, len(docs)) + 1):
                received = start + dt.timedelta(minutes=number)
                rows.append(
                    {
                        "id": number,
                        "reference": f"KIL-{number:06d}",
                        "message_id": f"<search-{number}@example.net>",
                        "sha256": f"{number:064x}",
                        "size": 5000,
                        "source": "bench",
                        "fetched_at": received,
                        "received_at": received,
                        "status": "parsed",
                        "sender_email": f"respondent{number}@example.net",
                        "sender_name": "Ann Smith",
                        "subject": f"Response {number}",
                        "timeliness": "on_time",
                        "body_text": docs[number - 1],
                        "kind": "response",
                    }
                )
            session.execute(table.insert(), rows)
            session.commit()


def _percentiles(timings: list[float]) -> tuple[float, float]:
    ordered = sorted(timings)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def _process_cpu(pid: int) -> float:
    """Seconds of CPU used so far by a process on this host (utime + stime, from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_cpu(session: Session) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL server process of this benchmark's connections.

    They are told apart by the application name, set in the URL; empty on SQLite.
    """
    if session.get_bind().dialect.name != "postgresql":
        return {}
    pids = session.scalars(
        text("SELECT pid FROM pg_stat_activity WHERE application_name = current_schema()")
    )
    return {pid: _process_cpu(pid) for pid in pids}


def _cpu_clock(session: Session) -> Callable[[], float]:
    """Seconds of CPU used so far by this process and, on PostgreSQL, its server process.

    The machine is shared: wall-clock times grow with everyone else's load, CPU time
    much less, so both are reported. The server's CPU is read from /proc (same host).
    """
    pid = None
    if session.get_bind().dialect.name == "postgresql":
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()

    def clock() -> float:
        return time.process_time() + (_process_cpu(pid) if pid is not None else 0.0)

    return clock


def _timed(
    call: Callable[[], object], repeat: int, cpu: Callable[[], float]
) -> tuple[float, float, float]:
    """p50 and p95 wall-clock ms, and the mean CPU ms per call."""
    call()  # warm the cache and the statement caches
    timings = []
    cpu_start = cpu()
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    cpu_ms = (cpu() - cpu_start) / repeat * 1000
    return (*_percentiles(timings), cpu_ms)


def measure(url: str, docs: list[str], repeat: int) -> list[tuple[str, str, str, bool | None]]:
    """Fill, index and query one database; rows of (figure, measured, target, passed)."""
    engine = open_database(url)
    sessions = make_session_factory(engine)
    engine_name = engine.dialect.name
    rows: list[tuple[str, str, str, bool | None]] = []
    try:
        _fill(sessions, docs)
        with sessions() as session:
            before = _server_cpu(session)
        started, cpu_start = time.perf_counter(), time.process_time()
        indexed = rebuild(sessions)
        build = time.perf_counter() - started
        build_cpu = time.process_time() - cpu_start
        with sessions() as session:
            after = _server_cpu(session)
        build_cpu += sum(used - before.get(pid, 0.0) for pid, used in after.items())
        with sessions() as session:
            size = index.index_size(session)
        rows.append(
            (
                f"index build, {indexed:,} responses",
                f"{build:.1f} s, CPU {build_cpu:.1f} s",
                "< 60 s",
                build < 60,
            )
        )
        rows.append(("index size", f"{size / 1e6:.0f} MB", "", None))
        limit = 50 if engine_name == "sqlite" else 100
        with sessions() as session:
            cpu = _cpu_clock(session)
            for label, query in QUERIES.items():
                found = len(search(session, query))
                target = 250 if label.startswith("word in") else limit
                p50, p95, used = _timed(lambda q=query: search(session, q), repeat, cpu)
                rows.append(
                    (
                        f"top 20 + snippets: {label}, {found} shown",
                        f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, CPU {used:.1f} ms",
                        f"p95 < {target} ms",
                        p95 < target,
                    )
                )
            matches = count(session, "parking")
            p50, p95, used = _timed(lambda: count(session, "parking"), repeat, cpu)
            rows.append(
                (
                    f"count: one word ({matches:,} responses)",
                    f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, CPU {used:.1f} ms",
                    f"p95 < {limit} ms",
                    p95 < limit,
                )
            )
    finally:
        engine.dispose()
    return rows


def _postgres_schema() -> tuple[str, Callable[[], None]]:
    admin = create_engine(POSTGRES)
    schema = f"bench_search_{uuid.uuid4().hex[:8]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()

    return f"{POSTGRES}?options=-csearch_path%3D{schema}&application_name={schema}", drop


def run(
    docs_count: int, repeat: int, postgres: bool
) -> list[tuple[str, str, str, str, bool | None]]:
    """Every figure, as (engine, figure, measured, target, passed)."""
    print(f"generating {docs_count:,} responses of {WORDS_PER_DOC} words", flush=True)
    docs = _documents(docs_count)
    results = []
    with tempfile.TemporaryDirectory(prefix="intake-search-bench-") as folder:
        print("SQLite ...", flush=True)
        for figure, measured, target, passed in measure(
            f"sqlite:///{Path(folder) / 'search.db'}", docs, repeat
        ):
            results.append(("SQLite", figure, measured, target, passed))
            print(f"  {figure}: {measured}", flush=True)
    if postgres:
        print("PostgreSQL ...", flush=True)
        url, drop = _postgres_schema()
        try:
            for figure, measured, target, passed in measure(url, docs, repeat):
                results.append(("PostgreSQL", figure, measured, target, passed))
                print(f"  {figure}: {measured}", flush=True)
        finally:
            drop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark intake search (module docstring).")
    parser.add_argument("--docs", type=int, default=100_000, help="responses [default: 100000]")
    parser.add_argument("--repeat", type=int, default=40, help="runs per query [default: 40]")
    parser.add_argument("--no-postgres", dest="postgres", action="store_false")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    results = run(args.docs, args.repeat, args.postgres)
    print("\n| engine | figure | measured | target | met |\n|---|---|---|---|---|")
    for engine_name, figure, measured, target, passed in results:
        verdict = "" if passed is None else ("yes" if passed else "NO")
        print(f"| {engine_name} | {figure} | {measured} | {target} | {verdict} |")
    print(f"\nload average (1 min): {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
