"""Measure question tagging and respondent types against a labelled set.

Run from the repository root: ``python benchmarks/questions.py``. The labelled set is
``benchmarks/data/questions_labelled.txt`` (fictional responses written for this
benchmark, one label per passage; its header explains the format). The questions are
the four of ``config.example.toml``.

The thresholds (``[analysis] threshold`` and ``second_ratio``) are chosen on the
``cal`` responses only; precision, recall and F1 are then reported on the ``held``
responses, which played no part in the choice (and, for comparison, on ``cal``).
Passages are cut by the real splitter from the rebuilt body and attachment texts;
each cut passage takes the labels of the labelled passage it came from.
Also prints the respondent-type accuracy and the time to split and tag 1,000
responses of about five pages each (``--speed-only`` for that alone).
Targets: F1 >= 0.8 overall and >= 0.7 per question (held out), type accuracy >= 90 %,
1,000 five-page responses in under a minute.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from intake.analysis.passages import BODY, split_response  # noqa: E402
from intake.analysis.respondent import classify_respondent  # noqa: E402
from intake.analysis.scorer import QuestionSpec, Scorer  # noqa: E402

DATA = REPO / "benchmarks" / "data" / "questions_labelled.txt"


@dataclass
class Labelled:
    ident: str
    split: str
    style: str
    sender: str = ""
    name: str = ""
    kind: str = ""
    organisation: str = ""
    # source ("body" or a file name) -> list of (heading line or None, text, labels)
    sources: dict[str, list[tuple[bool, str, frozenset[str]]]] = field(default_factory=dict)

    def text_of(self, source: str) -> str:
        return "\n\n".join(text for _, text, _ in self.sources.get(source, []))

    def gold(self) -> list[tuple[str, str, frozenset[str]]]:
        return [
            (source, text, labels)
            for source, items in self.sources.items()
            for heading, text, labels in items
            if not heading
        ]


def load(path: Path = DATA) -> list[Labelled]:
    responses: list[Labelled] = []
    current: Labelled | None = None
    source = BODY
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.rstrip()
        if line.startswith("=== "):
            ident, split, style = (part.strip() for part in line[4:].split("|"))
            current = Labelled(ident, split, style)
            responses.append(current)
            source = BODY
        elif current is None or not line or (line.startswith("# ") and current is None):
            continue
        elif line.startswith("from:"):
            value = line[5:].strip()
            name, _, email = value.rpartition("<")
            current.name, current.sender = name.strip(), email.rstrip(">").strip()
        elif line.startswith("type:"):
            current.kind = line[5:].strip()
        elif line.startswith("org:"):
            current.organisation = line[4:].strip()
        elif line.startswith("@ "):
            source = line[2:].strip()
        elif line.startswith("# "):
            current.sources.setdefault(source, []).append((True, line[2:], frozenset()))
        elif line.startswith("["):
            labels, _, text = line[1:].partition("] ")
            keys = frozenset(k.strip() for k in labels.split(",") if k.strip())
            current.sources.setdefault(source, []).append((False, text.strip(), keys))
    return responses


def questions() -> list[QuestionSpec]:
    config = tomllib.loads((REPO / "config.example.toml").read_text(encoding="utf-8"))
    return [
        QuestionSpec(
            q["key"],
            q["title"],
            q.get("text", ""),
            tuple(q.get("keywords", ())),
            tuple(q.get("examples", ())),
            number,
        )
        for number, q in enumerate(config["questions"], start=1)
    ]


def _norm(text: str) -> str:
    return " ".join(text.split())


def cut(response: Labelled) -> list[tuple[str, str, frozenset[str]]]:
    """The real splitter's passages, each with the gold labels of the passage it came from."""
    attachments = [(s, response.text_of(s)) for s in response.sources if s != BODY]
    found = []
    gold = [(s, _norm(t), labels) for s, t, labels in response.gold()]
    for passage in split_response(response.text_of(BODY), attachments):
        text = _norm(passage.text)
        labels: frozenset[str] = frozenset()
        for source, gold_text, gold_labels in gold:
            if source == passage.where and (text in gold_text or gold_text in text):
                labels = labels | gold_labels
        found.append((passage.heading, passage.text, labels))
    return found


def evaluate(
    scorer: Scorer, cases: list[list[tuple[str, str, frozenset[str]]]], keys: list[str]
) -> dict[str, tuple[float, float, float]]:
    tp = dict.fromkeys(keys, 0)
    fp = dict.fromkeys(keys, 0)
    fn = dict.fromkeys(keys, 0)
    for passages in cases:
        for heading, text, labels in passages:
            predicted = {tag.key for tag in scorer.tag(text, heading)}
            for key in keys:
                if key in predicted and key in labels:
                    tp[key] += 1
                elif key in predicted:
                    fp[key] += 1
                elif key in labels:
                    fn[key] += 1
    result = {}
    for key in [*keys, "overall"]:
        t = sum(tp.values()) if key == "overall" else tp[key]
        p_ = sum(fp.values()) if key == "overall" else fp[key]
        n = sum(fn.values()) if key == "overall" else fn[key]
        precision = t / (t + p_) if t + p_ else 0.0
        recall = t / (t + n) if t + n else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        result[key] = (precision, recall, f1)
    return result


def calibrate(
    specs: list[QuestionSpec], cases: list[list[tuple[str, str, frozenset[str]]]]
) -> tuple[float, float]:
    keys = [q.key for q in specs]
    best = (-1.0, 0.2, 0.8)
    for t in range(5, 90):
        threshold = t / 100
        for r in (0.6, 0.7, 0.8, 0.9, 1.0):
            f1 = evaluate(Scorer(specs, threshold, r), cases, keys)["overall"][2]
            if f1 > best[0]:
                best = (f1, threshold, r)
    return best[1], best[2]


def _table(title: str, result: dict[str, tuple[float, float, float]]) -> None:
    print(f"\n{title}\n  question   precision  recall  F1")
    for key, (p, r, f) in result.items():
        print(f"  {key:<9}  {p:9.2f}  {r:6.2f}  {f:5.2f}")


def _five_pages(responses: list[Labelled]) -> str:
    # About five pages: the labelled texts repeated to ~2,500 words per response.
    pool = [_norm(t) for r in responses for _, t, _ in r.gold()]
    page = "\n\n".join(pool)
    words = len(page.split())
    doc = "\n\n".join([page] * max(1, 2500 // words + 1))
    return " ".join(doc.split(" ")[:2500])  # keeps paragraph breaks within the cut


def _tag_many(count: int) -> tuple[int, int]:
    scorer = Scorer(questions(), 0.52, 1.0)
    doc = _five_pages(load())
    passages = tags = 0
    for _ in range(count):
        for passage in split_response("", [("response.pdf", doc)]):
            passages += 1
            tags += len(scorer.tag(passage.text, passage.heading))
    return passages, tags


def speed(count: int = 1000) -> None:
    start = time.perf_counter()
    passages, tags = _tag_many(count)
    took = time.perf_counter() - start
    print(
        f"\nSpeed: {count} responses of ~2,500 words (5 pages): {passages:,} passages, "
        f"{tags:,} tags in {took:.1f} s in one process ({count / took:,.0f} responses/s)"
    )
    start = time.perf_counter()
    with multiprocessing.Pool(2) as pool:
        parts = pool.map(_tag_many, [count // 2, count - count // 2])
    took = time.perf_counter() - start
    print(
        f"Speed: the same {count} responses in two processes: {sum(p for p, _ in parts):,} "
        f"passages in {took:.1f} s ({count / took:,.0f} responses/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed-only", action="store_true")
    args = parser.parse_args()
    specs = questions()
    keys = [q.key for q in specs]
    responses = load()
    if args.speed_only:
        speed()
        return
    cal = [cut(r) for r in responses if r.split == "cal"]
    held = [cut(r) for r in responses if r.split == "held"]
    n_cal = sum(len(c) for c in cal)
    n_held = sum(len(c) for c in held)
    print(
        f"Labelled set: {len(responses)} responses; calibration {len(cal)} responses "
        f"({n_cal} passages), held out {len(held)} ({n_held} passages)"
    )
    threshold, ratio = calibrate(specs, cal)
    print(f"Calibrated on 'cal': threshold = {threshold:.2f}, second_ratio = {ratio:.1f}")
    scorer = Scorer(specs, threshold, ratio)
    _table("Held out (reported figures)", evaluate(scorer, held, keys))
    _table("Calibration set (for comparison; optimistic)", evaluate(scorer, cal, keys))
    right = 0
    for split in ("cal", "held", "all"):
        chosen = [r for r in responses if split in ("all", r.split)]
        right = 0
        wrong = []
        for r in chosen:
            texts = [r.text_of(s) for s in r.sources]
            got = classify_respondent(r.sender, r.name, texts)
            if got.type == r.kind:
                right += 1
            else:
                wrong.append(f"{r.ident}: {got.type} (expected {r.kind})")
        print(f"\nRespondent type ({split}): {right}/{len(chosen)} = {right / len(chosen):.0%}")
        for line in wrong:
            print(f"  wrong: {line}")
    speed()


if __name__ == "__main__":
    main()
