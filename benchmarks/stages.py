"""Full poll of body-only responses through the stages, on SQLite: messages per second.

Starts its own Dovecot, writes N body-only responses of about 20 KB as Maildir
files, then times one ``run_cycle`` (lease, fetch, store, every due stage, acks
off) into a fresh SQLite file, and a raw ``imaplib`` fetch of the same messages
for reference. Prints one JSON object. Target (issue "stages"): 1,500 msg/s.

    python benchmarks/stages.py [--messages 2000] [--repo PATH]

``--repo`` runs the same measurement against another checkout of the code (for a
before/after comparison); the default is this one.

The generated respondents all write from ``example.net``. Read as one organisation,
every response would be a possible revised version of every earlier one (the cluster
stage compares each new response with all of its organisation's), which is not what
2,000 people writing in look like; so the benchmark lists ``example.net`` among
``[campaigns] public_mail_domains``. ``--one-organisation`` leaves it out, to measure
that worst case. ``--questions`` adds the four ``[[questions]]`` of
``config.example.toml``, so the tag stage cuts and scores passages too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _cpu_s() -> float:
    """CPU seconds of this process and of its finished children (the stage processes)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--body-kb", type=int, default=20, help="size of each body (KB)")
    parser.add_argument("--repo", type=Path, default=HERE.parent)
    parser.add_argument("--profile", type=Path, help="write cProfile stats of the poll here")
    parser.add_argument(
        "--processes", type=int, default=2, help="[stages] processes: 1 runs every stage here"
    )
    parser.add_argument("--batch", type=int, default=50, help="[stages] batch")
    parser.add_argument(
        "--one-organisation",
        action="store_true",
        help="read every respondent as one organisation (the worst case)",
    )
    parser.add_argument(
        "--questions",
        action="store_true",
        help="configure the four [[questions]] of config.example.toml (passages are tagged)",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(args.repo.resolve()))
    sys.path.insert(1, str(HERE.parent))  # tests.support and benchmarks.corpus from here
    sys.path.insert(2, str(HERE))
    # The code measured first: run.py puts this checkout at the front of sys.path.
    from intake.app import App  # noqa: I001 - order matters, see above
    from intake.config import parse_settings
    from intake.worker import holder_id, run_cycle

    import corpus
    from run import mail_owner, raw_fetch
    from tests.support import Dovecot

    start = dt.datetime(2018, 7, 1, 9, 0, tzinfo=dt.UTC)
    with Dovecot() as dovecot, tempfile.TemporaryDirectory() as work:
        owner = mail_owner(dovecot)
        maildir = corpus.prepare_maildir(dovecot.maildir_root, owner)

        def messages():  # type: ignore[no-untyped-def]
            for number in range(1, args.messages + 1):
                spec = corpus.Spec(number, "body", 0, 0, args.body_kb * 1000)
                when = start + dt.timedelta(seconds=37 * number)
                yield corpus.build_message(spec, when), when

        sizes: list[int] = []

        def measured():  # type: ignore[no-untyped-def]
            for raw, when in messages():
                sizes.append(len(raw))
                yield raw, when

        count, size = corpus.write_maildir(maildir, measured(), owner, "stages")
        largest = max(sizes)
        with dovecot.client(timeout=600) as conn:
            conn.select("INBOX", readonly=True)
            _, data = conn.uid("SEARCH", "ALL")
            uids = sorted(int(n) for n in (data[0] or b"").split())
        assert len(uids) == count
        import tomllib

        database = Path(work) / "bench.db"
        public = "[]" if args.one_organisation else '["example.net"]'

        document = tomllib.loads(
            f"""
[consultation]
name = "Benchmark"
deadline = 2018-07-27T23:59:59
[database]
url = "sqlite:///{database}"
[imap]
host = "{dovecot.host}"
port = {dovecot.port}
security = "none"
username = "{dovecot.user}"
password_env = "P"
[campaigns]
public_mail_domains = {public}
[stages]
processes = {args.processes}
batch = {args.batch}
"""
        )
        if args.questions:
            example = tomllib.loads((HERE.parent / "config.example.toml").read_text())
            document["questions"] = example["questions"]
        app = App(parse_settings(document, {"P": dovecot.password}))
        app.engine  # noqa: B018 - create the schema before the clock starts
        import cProfile

        profiler = cProfile.Profile(time.process_time) if args.profile else None  # CPU, not wall
        cpu_started = _cpu_s()
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        with app.pipeline() as pipeline:
            report = run_cycle(
                pipeline,
                app.inbox_factory(),
                holder=holder_id(),
                lease_ttl=dt.timedelta(minutes=2),
            )
        elapsed = time.perf_counter() - started
        cpu = _cpu_s() - cpu_started
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(args.profile))
        app.close()
        assert report.stored == count and report.read.read == count, report
        # The poll's peak first: the reference fetch below holds whole batches itself.
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        raw = min(raw_fetch(dovecot, uids, 50) for _ in range(2))
        print(
            json.dumps(
                {
                    "code": str(Path(sys.modules["intake"].__file__ or "").parent.parent),
                    "messages": count,
                    "one_organisation": args.one_organisation,
                    "stage_processes": args.processes,
                    "stage_batch": args.batch,
                    "mbytes": round(size / 1e6, 1),
                    "largest_message_mb": round(largest / 1e6, 1),
                    "full_poll_s": round(elapsed, 2),
                    "full_poll_msg_per_s": round(count / elapsed, 1),
                    # On a shared machine the wall time says more about the neighbours:
                    # the CPU time of this process (all threads) says what the poll costs.
                    "full_poll_cpu_s": round(cpu, 2),
                    "cpu_ms_per_msg": round(cpu * 1000 / count, 2),
                    "msg_per_cpu_s": round(count / cpu, 1),
                    "raw_imaplib_msg_per_s": round(count / raw, 1),
                    "ratio_to_raw": round(raw / elapsed, 3),
                    "peak_rss_mb_poll": round(peak_mb, 1),
                }
            )
        )


if __name__ == "__main__":
    main()
