"""Figures for the operator's commands: import throughput, list oldest first, status, check.

Run: ``python benchmarks/cli.py [--stored 100000] [--files 500]``. It builds its own
SQLite database in a temporary folder and prints one line per figure; each command
is run as a real ``intake`` process (startup included), best of three.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.dbfill import fill_submissions  # noqa: E402
from benchmarks.installed import compile_program  # noqa: E402
from store.db import open_database  # noqa: E402

CONFIG = """
[consultation]
name = "Keep it Local"
deadline = 2018-07-27T23:59:59
reference_prefix = "KIL"

[database]
url = "sqlite:///{name}"
"""

EML = (
    "From: Respondent {n} <r{n}@example.net>\nTo: evidence@example.org\n"
    "Subject: Response {n}\nDate: Tue, 24 Jul 2018 10:00:00 +0100\n"
    "Message-ID: <bench-import-{n}@example.net>\n\nWe support the plan ({n}).\n"
)


def _intake(config: Path, *args: str) -> float:
    """Best of three wall-clock seconds for one ``intake`` command (output discarded)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "intake", "--config", str(config), *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            check=False,
        )
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=500)
    options = parser.parse_args()
    compile_program()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # import: mail and a tenth as many files that are not mail
        mail = folder / "backfill"
        mail.mkdir()
        for n in range(options.files):
            (mail / f"{n:05d}.eml").write_text(EML.format(n=n))
        for n in range(options.files // 10):
            (mail / f"notes-{n}.txt").write_text("Meeting notes, not an email.\n" * 20)
        config = folder / "import.toml"
        config.write_text(CONFIG.format(name="import.db"))
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "intake", "--config", str(config), "import", str(mail)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            check=False,
        )
        took = time.perf_counter() - start
        total = options.files + options.files // 10
        print(
            f"import, {options.files} .eml + {options.files // 10} skipped files: "
            f"{took:.1f} s ({total / took:.0f} files/s, reading included)"
        )

        # list, status, check over a large database
        big = folder / "big.toml"
        big.write_text(CONFIG.format(name="big.db"))
        engine = open_database(f"sqlite:///{folder / 'big.db'}")
        fill_submissions(
            engine,
            first=1,
            uids=list(range(1, options.stored + 1)),
            mailbox="bench",
            validity=1,
            end=dt.datetime(2018, 7, 27, 22, 59, 59, tzinfo=dt.UTC),
        )
        engine.dispose()
        for args in (("--version",), ("status",), ("check",), ("list",), ("list", "--json")):
            seconds = _intake(big, *args)
            print(f"intake {' '.join(args)}, {options.stored:,} stored: {seconds:.2f} s")


if __name__ == "__main__":
    main()
