"""Benchmark campaign detection on a labelled, generated consultation.

Run from the repository root::

    .venv/bin/python benchmarks/campaigns.py                # 10,000 for quality, 100,000 for speed
    .venv/bin/python benchmarks/campaigns.py --quality 5000 --scale 0   # quick

The generator writes templates and independent responses from one shared grammar
("Local authorities should be given long-term funding over the next decade."), so
independent responses share phrases with the templates and with each other without
being copies; a fifth of them quote a sentence of a campaign's letter. Each campaign
member is one of the edit types studied in comment de-duplication: an exact copy, a
few words changed, a block edited, paragraphs reordered, the template embedded in a
longer letter, or additions at the start or end.

Membership is scored pairwise: a pair of responses is "together" when they are in the
same campaign. Precision = true pairs found / pairs found; recall = true pairs found /
true pairs. The speed run clusters ``--scale`` responses (fingerprints, MinHash, LSH,
containment, then the template and every member's role) and reports wall time and the
peak memory of the process (ru_maxrss).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from intake.analysis.campaigns import CampaignParams, describe, find_groups  # noqa: E402
from intake.analysis.text import Fingerprint, fingerprint  # noqa: E402

EDITS = (
    "exact",
    "few_words",
    "block_edited",
    "reordered",
    "embedded",
    "additions_start",
    "additions_end",
)

OPENERS = [
    "I believe that",
    "In my view",
    "It is clear that",
    "We think that",
    "I am concerned that",
    "Our members feel that",
    "I would argue that",
    "Many people here agree that",
    "It seems to me that",
    "Above all",
    "The evidence shows that",
    "I strongly feel that",
]
SUBJECTS = [
    "local authorities",
    "public services",
    "the Scottish Government",
    "small businesses",
    "community groups",
    "the national investment bank",
    "rural communities",
    "young people",
    "housing associations",
    "health boards",
    "local councils",
    "the voluntary sector",
    "town centres",
    "island communities",
    "public transport operators",
    "care providers",
]
VERBS = [
    "should be given",
    "need",
    "must receive",
    "would benefit from",
    "deserve",
    "cannot do without",
    "depend on",
    "should have",
    "are asking for",
    "have been denied",
]
OBJECTS = [
    "long-term funding",
    "clear guidance",
    "more powers over planning",
    "a fair share of investment",
    "support to reach net zero",
    "better transport links",
    "access to patient capital",
    "a stronger voice in decisions",
    "stable budgets",
    "proper scrutiny",
    "investment in skills",
    "affordable housing",
    "digital connectivity",
    "a mission-led approach",
    "fair work conditions",
    "protection from cuts",
]
QUALIFIERS = [
    "over the next decade",
    "in every region",
    "without further delay",
    "as the consultation proposes",
    "because the current system fails them",
    "if the bank is to succeed",
    "and this must be written into law",
    "from the start",
    "across Scotland",
    "for the public good",
    "in the years ahead",
    "at the local level",
]


def _syllable_words(rng: random.Random, n: int) -> list[str]:
    parts = [
        "ka",
        "lo",
        "mi",
        "ter",
        "van",
        "sol",
        "bri",
        "dun",
        "gle",
        "nor",
        "wes",
        "ath",
        "ri",
        "mor",
        "pen",
        "cal",
        "tra",
        "vel",
        "hol",
        "mer",
        "ston",
        "by",
        "ford",
    ]
    return ["".join(rng.choice(parts) for _ in range(rng.randint(2, 3))) for _ in range(n)]


@dataclass
class Generated:
    texts: list[str]
    labels: list[int | None]  # campaign number, None for an independent response
    edits: list[str | None]


class Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - test data, not secrets
        self.vocab = _syllable_words(self.rng, 3000)

    def topic_sentence(self) -> str:
        r = self.rng
        sentence = f"{r.choice(OPENERS)} {r.choice(SUBJECTS)} {r.choice(VERBS)} "
        return sentence + f"{r.choice(OBJECTS)} {r.choice(QUALIFIERS)}."

    def personal_sentence(self) -> str:
        r = self.rng
        words = r.sample(self.vocab, r.randint(6, 14))
        return f"{r.choice(['My', 'Our', 'The'])} {' '.join(words)} {r.choice(SUBJECTS)}."

    def paragraph(self, sentences: int) -> str:
        return " ".join(
            self.topic_sentence() if self.rng.random() < 0.5 else self.personal_sentence()
            for _ in range(sentences)
        )

    def letter(self, paragraphs: int) -> list[str]:
        return [self.paragraph(self.rng.randint(3, 5)) for _ in range(paragraphs)]

    def edit(self, paragraphs: list[str], kind: str) -> str:
        r = self.rng
        paras = list(paragraphs)
        if kind == "few_words":
            words = " ".join(paras).split(" ")
            for _ in range(r.randint(2, 5)):
                words[r.randrange(len(words))] = r.choice(self.vocab)
            return " ".join(words)
        if kind == "block_edited":
            paras[r.randrange(len(paras))] = self.paragraph(r.randint(2, 4))
        elif kind == "reordered":
            while paras == paragraphs:
                r.shuffle(paras)
        elif kind == "embedded":
            before = self.letter(r.randint(2, 4))
            after = self.letter(r.randint(1, 3))
            paras = [*before, *paras, *after]
        elif kind == "additions_start":
            paras = [self.paragraph(r.randint(1, 3)), *paras]
        elif kind == "additions_end":
            paras = [*paras, self.paragraph(r.randint(1, 3))]
        return "\n\n".join(paras)

    def consultation(self, total: int, campaign_share: float, campaigns: int) -> Generated:
        r = self.rng
        templates = [self.letter(r.randint(4, 6)) for _ in range(campaigns)]
        weights = [1 / (i + 1) for i in range(campaigns)]  # a few big campaigns, many small
        n_campaign = int(total * campaign_share)
        texts: list[str] = []
        labels: list[int | None] = []
        edits: list[str | None] = []
        for _ in range(n_campaign):
            c = r.choices(range(campaigns), weights)[0]
            kind = r.choices(EDITS, [4, 1, 1, 1, 1, 1, 1])[0]
            texts.append(self.edit(templates[c], kind))
            labels.append(c)
            edits.append(kind)
        for _ in range(total - n_campaign):
            own = self.letter(r.randint(1, 6))
            if r.random() < 0.2:  # quotes a sentence of a campaign's letter: still not a copy
                quoted = r.choice(r.choice(templates)).split(". ")[0]
                own.insert(r.randrange(len(own) + 1), f'As others have said, "{quoted}."')
            texts.append("\n\n".join(own))
            labels.append(None)
            edits.append(None)
        order = list(range(total))
        r.shuffle(order)
        return Generated(
            [texts[i] for i in order], [labels[i] for i in order], [edits[i] for i in order]
        )


def cluster(texts: list[str], params: CampaignParams) -> list[list[int]]:
    """The detector end to end: groups, then each group's template and members."""

    def fingerprints() -> Iterator[tuple[int, Fingerprint]]:
        for i, text in enumerate(texts):
            yield i, fingerprint(text, params.shingle_words)

    result = []
    for group in find_groups(fingerprints(), params):
        cache: dict[int, Fingerprint] = {}

        def fp_of(i: int, cache: dict[int, Fingerprint] = cache) -> Fingerprint:
            if i not in cache:
                cache[i] = fingerprint(texts[i], params.shingle_words)
            return cache[i]

        view = describe(group, fp_of, texts.__getitem__, params)
        if view is not None:
            result.append(sorted(view.members))
    return result


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def score(found: list[list[int]], labels: list[int | None]) -> tuple[float, float, int, int]:
    true_sizes = Counter(label for label in labels if label is not None)
    true_pairs = sum(_pairs(n) for n in true_sizes.values())
    found_pairs = sum(_pairs(len(g)) for g in found)
    hits = 0
    for group in found:
        by_label = Counter(labels[i] for i in group if labels[i] is not None)
        hits += sum(_pairs(n) for n in by_label.values())
    precision = hits / found_pairs if found_pairs else 1.0
    recall = hits / true_pairs if true_pairs else 1.0
    return precision, recall, found_pairs, true_pairs


def recall_by_edit(found: list[list[int]], gen: Generated) -> dict[str, float]:
    """Share of each edit type's responses put in the campaign of most of their own."""
    home: dict[int, int] = {}
    for group in found:
        top = Counter(gen.labels[i] for i in group if gen.labels[i] is not None).most_common(1)
        if top:
            for i in group:
                if gen.labels[i] == top[0][0]:
                    home[i] = 1
    totals: Counter[str] = Counter()
    hits: Counter[str] = Counter()
    for i, kind in enumerate(gen.edits):
        if kind is not None:
            totals[kind] += 1
            hits[kind] += home.get(i, 0)
    return {kind: hits[kind] / totals[kind] for kind in EDITS if totals[kind]}


def store_run(total: int, seed: int) -> str:
    """``intake campaigns recompute`` over ``total`` responses stored in a fresh SQLite file."""
    import datetime as dt
    import tempfile

    from sqlalchemy import insert

    from intake.config import CampaignSettings
    from intake.stages.cluster import recompute_all
    from store import campaigns as store
    from store.db import make_session_factory, open_database
    from store.models import Submission

    gen = Generator(seed).consultation(total, 0.6, 100)
    with tempfile.TemporaryDirectory() as folder:
        engine = open_database(f"sqlite:///{folder}/bench.db")
        sessions = make_session_factory(engine)
        now = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
        rows = [
            {
                "reference": f"BEN-{n:06d}",
                "message_id": f"<{n}@bench>",
                "sha256": f"{n:064d}",
                "size": len(text),
                "source": "bench",
                "fetched_at": now,
                "status": "parsed",
                "kind": "response",
                "sender_email": f"person{n}@gmail.com",
                "body_text": text,
            }
            for n, text in enumerate(gen.texts, start=1)
        ]
        with sessions() as session:
            session.execute(insert(Submission), rows)
            session.commit()
        del rows
        start, cpu = time.perf_counter(), _cpu()
        with sessions() as session:
            summary = recompute_all(session, CampaignSettings(), now)
            session.commit()
            counts = store.honest_counts(session)
        took, cpu = time.perf_counter() - start, _cpu() - cpu
        engine.dispose()
    return (
        f"store: intake campaigns recompute over {total:,} stored responses (SQLite): "
        f"{took:.1f} s wall, {cpu:.1f} s CPU; {summary.campaigns} campaigns, "
        f"{summary.members:,} members; unique responses {counts.unique:,}"
    )


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quality", type=int, default=10_000, help="responses for precision")
    parser.add_argument("--scale", type=int, default=100_000, help="responses for speed (0: skip)")
    parser.add_argument("--store", type=int, default=0, help="responses for a stored recompute")
    parser.add_argument("--campaign-share", type=float, default=0.6)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    params = CampaignParams()
    lines = [f"Python {platform.python_version()}, {os.cpu_count()} CPU(s) visible"]

    gen = Generator(args.seed).consultation(args.quality, args.campaign_share, 40)
    start = time.perf_counter()
    found = cluster(gen.texts, params)
    took = time.perf_counter() - start
    precision, recall, found_pairs, true_pairs = score(found, gen.labels)
    independent = sum(label is None for label in gen.labels)
    lines += [
        f"quality: {args.quality:,} responses ({independent:,} independent, 40 campaigns), "
        f"clustered in {took:.1f} s",
        f"  pairwise precision {precision:.4f}, recall {recall:.4f} "
        f"({found_pairs:,} pairs found, {true_pairs:,} true pairs)",
        "  recall by edit type: "
        + ", ".join(f"{k} {v:.3f}" for k, v in recall_by_edit(found, gen).items()),
    ]
    print("\n".join(lines), flush=True)
    if args.scale:
        del gen, found
        big = Generator(args.seed + 1).consultation(args.scale, args.campaign_share, 200)
        generated_mb = _peak_mb()
        start, cpu = time.perf_counter(), _cpu()
        found = cluster(big.texts, params)
        took, cpu = time.perf_counter() - start, _cpu() - cpu
        precision, recall, _, _ = score(found, big.labels)
        line = (
            f"scale: {args.scale:,} responses (200 campaigns) clustered in {took:.1f} s "
            f"wall, {cpu:.1f} s CPU, load average {os.getloadavg()[0]:.1f}; "
            f"peak RSS {_peak_mb():.0f} MB (texts alone {generated_mb:.0f} MB); "
            f"precision {precision:.4f}, recall {recall:.4f}"
        )
        print(line, flush=True)
        lines.append(line)
    if args.store:
        print(store_run(args.store, args.seed + 2), flush=True)


if __name__ == "__main__":
    main()
