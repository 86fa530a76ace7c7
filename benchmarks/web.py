"""Server render time of the staff web view over 100,000 stored submissions.

Run from the repository root::

    .venv/bin/python benchmarks/web.py                  # 100,000, SQLite and PostgreSQL
    .venv/bin/python benchmarks/web.py --size 10000 --no-postgres

Fills a fresh database with ``--size`` parsed submissions (``dbfill``: one attachment
each, 3% unreadable, arrivals over 60 days), signs in, then requests each page in
process through the ASGI app (no network) and prints the median and the slowest of
``--repeat`` timed requests after one warm-up. The target is 300 ms of server time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

import dbfill  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from intake.app import App  # noqa: E402
from intake.config import parse_settings  # noqa: E402
from intake.web import create_app  # noqa: E402
from intake.web.auth import hash_password  # noqa: E402
from store import db  # noqa: E402
from store import users as user_store  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PAGES = [
    ("dashboard", "/"),
    ("list, newest first", "/submissions"),
    ("list, late only", "/submissions?timeliness=late"),
    ("list, unreadable files", "/submissions?unreadable=1"),
    ("list, page 1,000", "/submissions?page=1000"),
    ("list, date range", "/submissions?from=2018-07-01&to=2018-07-10"),
    ("one response", "/submissions/KIL-{middle:05d}"),
    ("search (sender/subject filter)", "/search?q=respondent4242"),
    ("needs attention", "/attention"),
]
NOW = dt.datetime(2018, 7, 28, 12, 0, tzinfo=dt.UTC)
PASSWORD = "benchmark password"  # noqa: S105 - a throwaway account in a throwaway database


def _settings(url: str):  # type: ignore[no-untyped-def]
    document = {
        "consultation": {
            "name": "Benchmark",
            "deadline": dt.datetime(2018, 7, 27, 23, 59, 59),
            "reference_prefix": "KIL",
        },
        "database": {"url": url},
        "maildir": {"path": "/nonexistent"},
    }
    return parse_settings(document, {"INTAKE_WEB_SECRET_KEY": "b" * 40})


def measure(url: str, size: int, repeat: int) -> list[tuple[str, float, float, int]]:
    engine = db.make_engine(url)
    db.upgrade(engine)
    started = time.perf_counter()
    dbfill.fill_submissions(
        engine, first=1, uids=list(range(1, size + 1)), mailbox="INBOX", validity=1, end=NOW
    )
    print(f"  filled {size:,} in {time.perf_counter() - started:.1f} s", flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # What autovacuum (PostgreSQL) or a periodic ANALYZE would have done after a load.
        conn.execute(text("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"))
    engine.dispose()
    app = App(_settings(url), now=lambda: NOW)
    with app.sessions() as session:
        user_store.add_user(session, "bench@example.org", "admin", hash_password(PASSWORD), NOW)
        session.commit()
    found = []
    with TestClient(create_app(app)) as client:
        page = client.get("/login")
        token = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        client.post(
            "/login", data={"email": "bench@example.org", "password": PASSWORD, "csrf": token}
        )
        for name, path in PAGES:
            path = path.replace("{middle:05d}", f"{size // 2:05d}")
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            times = []
            for _ in range(repeat):
                begin = time.perf_counter()
                response = client.get(path)
                times.append(time.perf_counter() - begin)
            found.append((name, statistics.median(times), max(times), len(response.content)))
    app.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    results: dict[str, list[tuple[str, float, float, int]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        print("SQLite:", flush=True)
        results["sqlite"] = measure(f"sqlite:///{Path(tmp) / 'web.db'}", args.size, args.repeat)
    if not args.no_postgres:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(POSTGRES)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            print("PostgreSQL:", flush=True)
            url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
            results["postgres"] = measure(url, args.size, args.repeat)
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    print(f"\nServer render time, {args.size:,} submissions, median (max) of {args.repeat}:\n")
    print("| page | backend | median | max | bytes | target < 300 ms |")
    print("|---|---|---|---|---|---|")
    for backend, rows in results.items():
        for name, median, slowest, size in rows:
            verdict = "pass" if median < 0.3 else "FAIL"
            print(
                f"| {name} | {backend} | {median * 1000:.0f} ms | {slowest * 1000:.0f} ms "
                f"| {size:,} | {verdict} |"
            )


if __name__ == "__main__":
    main()
