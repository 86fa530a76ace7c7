"""Scale figure: responses with PDFs read by 1 and by 2 process workers over PostgreSQL.

Run from the repository root (PostgreSQL at 127.0.0.1:5432, database ``test``)::

    .venv/bin/python benchmarks/scale.py                  # 1,000 messages with PDFs
    .venv/bin/python benchmarks/scale.py --messages 200   # quicker

For each worker count it takes a fresh schema, stores the messages (``intake
import``'s storing step only), then starts that many ``intake worker --role process``
processes (``[worker] concurrency = 1``: one job and one extraction process each,
so each uses one core) and times until every ``read`` stage is done. It then
measures the cost the database adds per job -- the same run with body-only
messages, where there is almost nothing to extract -- and prints a throughput
model for N processors against one PostgreSQL:

    X(N) = min(N * X1, Xdb)

where X1 is one processor's rate on PDF responses and Xdb the rate at which the
processors' claims, commits and queue traffic saturate the database (measured here
with 2 processors on body-only messages, on a machine whose 2 cores also run
PostgreSQL: a floor, not a ceiling).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import corpus  # noqa: E402
from benchmarks.installed import compile_program  # noqa: E402
from intake.app import App  # noqa: E402
from intake.config import load_settings  # noqa: E402
from intake.worker import import_path  # noqa: E402
from store import db  # noqa: E402
from store.work import StageRow, StageState  # noqa: E402

POSTGRES = os.environ.get(
    "INTAKE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
START = dt.datetime(2018, 7, 20, 9, 0, tzinfo=dt.UTC)


def _specs(count: int, kind: str) -> list[corpus.Spec]:
    specs = []
    for number in range(1, count + 1):
        if kind == "pdf":
            template = number % corpus.PDF_TEMPLATES
            pages, size = corpus._template_spec("pdf", template)
            specs.append(corpus.Spec(number, "pdf", template, pages, size))
        else:
            specs.append(corpus.Spec(number, "body", 0, 0, 2_000))
    return specs


def _maildir(root: Path, specs: list[corpus.Spec]) -> tuple[Path, int]:
    maildir = corpus.prepare_maildir(root / "mail", None)
    messages = (
        (corpus.build_message(spec, START + dt.timedelta(seconds=spec.number)), START)
        for spec in specs
    )
    corpus.write_maildir(maildir, messages, None, "scale")
    return maildir, sum(spec.pages for spec in specs)


def _config(root: Path, url: str, maildir: Path) -> Path:
    path = root / f"scale-{uuid.uuid4().hex[:6]}.toml"
    path.write_text(f"""
[consultation]
name = "Keep it Local: call for evidence"
deadline = 2018-07-27T23:59:59
reference_prefix = "KIL"

[database]
url = "{url}"

[maildir]
path = "{maildir}"

[limits]
workers = 1

[worker]
concurrency = 1
stall_after_s = 6
sweep_every_s = 0.5

# The generated PDFs are stamped copies of a few templates: one giant "campaign"
# that is not what this figure measures.
[campaigns]
enabled = false
""")
    return path


def _done(app: App) -> int:
    with app.sessions() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(StageRow)
                .where(StageRow.stage == "read", StageRow.state == StageState.DONE)
            )
            or 0
        )


def _workers(app: App) -> int:
    with app.sessions() as session:
        return int(session.scalar(text("SELECT count(*) FROM procrastinate_workers")) or 0)


def run(root: Path, specs: list[corpus.Spec], processors: int) -> float:
    """Seconds for ``processors`` process workers to read every message."""
    schema = f"scale_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    workdir = Path(tempfile.mkdtemp(dir=root))
    maildir, _ = _maildir(workdir, specs)
    config = _config(workdir, url, maildir)
    app = App(load_settings(config, {}))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        db.upgrade(app.engine)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        command = [sys.executable, "-m", "intake", "--config", str(config), "worker"]
        for _ in range(processors):
            procs.append(
                subprocess.Popen(
                    [*command, "--role", "process"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=env,
                    cwd=ROOT,
                )
            )
        while _workers(app) < processors:  # started and listening: startup is not timed
            time.sleep(0.1)
        with app.pipeline(acks=False) as pipeline:
            import_path(pipeline, maildir)
        started = time.perf_counter()
        # The processors' own sweeps queue the stored messages: nothing else is needed.
        while _done(app) < len(specs):
            if any(p.poll() is not None for p in procs):
                raise SystemExit("a processor exited early")
            time.sleep(0.1)
        return time.perf_counter() - started
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)
        app.close()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    args = parser.parse_args()
    compile_program()
    root = Path(tempfile.mkdtemp(prefix="intake-scale-"))
    pdfs = _specs(args.messages, "pdf")
    pages = sum(spec.pages for spec in pdfs)
    print(f"{args.messages} messages with PDFs ({pages} pages); {os.cpu_count()} cores")
    seconds = {}
    for processors in (1, 2):
        seconds[processors] = run(root, pdfs, processors)
        rate = args.messages / seconds[processors]
        print(
            f"  {processors} process worker(s): {seconds[processors]:6.1f} s  "
            f"{rate:6.1f} msgs/s  {pages / seconds[processors]:6.1f} pages/s"
        )
    ratio = seconds[1] / seconds[2]
    print(f"  2 vs 1: {ratio:.2f}x")
    bodies = _specs(args.messages, "body")
    db_seconds = run(root, bodies, 2)
    x1 = args.messages / seconds[1]
    xdb = args.messages / db_seconds
    print(f"body-only, 2 process workers: {db_seconds:.1f} s = {xdb:.0f} jobs/s (database floor)")
    print("model X(N) = min(N * X1, Xdb), one core per processor:")
    for n in (1, 2, 4, 8, 16, 32):
        bound = "  (database-bound)" if n * x1 > xdb else ""
        print(f"  N={n:2d}: {min(n * x1, xdb):7.1f} msgs/s{bound}")


if __name__ == "__main__":
    main()
