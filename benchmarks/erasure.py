"""How long erasure takes, and what it costs in the file: purge --anonymise of a big store.

Fills a fresh SQLite database (and PostgreSQL when reachable) with N read
submissions by bulk inserts (benchmarks/dbfill.py), then times the erasure of the
older half through the same code as ``intake purge --before DATE --anonymise``:
the erasers, the audit record, and settling the files (WAL checkpoint on SQLite,
VACUUM on PostgreSQL). Prints one line per figure.

    python benchmarks/erasure.py [--n 20000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text  # noqa: E402

from benchmarks.dbfill import fill_submissions  # noqa: E402
from intake.staff.erasure import erase, plan_purge  # noqa: E402
from store import db  # noqa: E402

END = dt.datetime(2018, 7, 27, 23, 0, tzinfo=dt.UTC)
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _measure(url: str, n: int, label: str) -> None:
    engine = db.open_database(url)
    fill_submissions(
        engine, first=1, uids=list(range(1, n + 1)), mailbox="INBOX", validity=1, end=END
    )
    sessions = db.make_session_factory(engine)
    cutoff = END - dt.timedelta(days=7)
    with sessions() as session:
        started = time.perf_counter()
        plan = plan_purge(session, cutoff, anonymise=True)
        chose = time.perf_counter() - started
    started = time.perf_counter()
    report = erase(sessions, engine, plan, END, action="purge")
    took = time.perf_counter() - started
    rate = len(plan.ids) / took if took else 0.0
    print(f"{label}: {n:,} stored, chose {len(plan.ids):,} in {chose:.2f} s")
    print(f"{label}: erased {len(plan.ids):,} submissions in {took:.2f} s ({rate:,.0f}/s)")
    print(f"{label}: {report.summary()}; settled={report.settled}")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="submissions to store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        _measure(f"sqlite:///{path}", args.n, "sqlite")
        print(f"sqlite: file after erasure {path.stat().st_size / 1e6:.1f} MB")
    schema = "bench_erasure"
    admin = create_engine(POSTGRES)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - PostgreSQL is optional here
        print(f"postgres: not measured ({exc.__class__.__name__})")
        return
    try:
        _measure(f"{POSTGRES}?options=-csearch_path%3D{schema}", args.n, "postgres")
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    main()
