"""Time the MIME reader over real-world mail: the whole corpus, best of three runs.

    python benchmarks/mime_read.py [FOLDER...]

Reads every .eml under the folders (default: the shared corpus beside the project
and tests/data/eml) with :func:`intake.mail.mime.read_message` and prints the time per
pass, the number of leaf parts and how they were accounted for.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from intake.mail.mime import read_message  # noqa: E402


def main() -> None:
    folders = [Path(a) for a in sys.argv[1:]] or [
        ROOT.parent / "shared" / "corpus" / "emails",
        ROOT / "tests" / "data" / "eml",
    ]
    raws = [p.read_bytes() for folder in folders for p in sorted(folder.glob("*.eml"))]
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        results = [read_message(raw) for raw in raws]
        best = min(best, time.perf_counter() - started)
    leaves = sum(envelope.leaves for envelope, _ in results)
    body = sum(envelope.body_parts for envelope, _ in results)
    files = sum(len(parts) for _, parts in results)
    skipped = Counter(str(s.reason) for envelope, _ in results for s in envelope.skipped)
    size = sum(map(len, raws)) / 1e6
    print(f"{len(raws)} messages, {size:.1f} MB: best pass {best * 1000:.0f} ms")
    print(
        f"{leaves} leaf parts: {body} body text, {files} attachments, "
        f"{sum(skipped.values())} skipped {dict(skipped.most_common())}"
    )


if __name__ == "__main__":
    main()
