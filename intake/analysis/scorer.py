"""Which of the call's questions a passage speaks to, and why (pure, no model).

Each question becomes a profile: the stems of its text, keywords and examples,
each weighted by how few questions share it, plus its keyword phrases and its
example sentences. A passage scores against a profile from

- the profile terms it contains (a keyword counts double),
- the keyword phrases it contains ("scale fail", "community asset transfer"),
- its TF-IDF cosine with the nearest example sentence,
- a heading cue: the heading of its section names the question ("Question 2",
  "(b)", or most of the question's title),

squashed to 0..1. A passage is tagged with its best question when that score
reaches the threshold, and with any other whose score is over the threshold and
at least ``second_ratio`` of the best. Every tag carries its reason.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = ["QuestionSpec", "Scorer", "Tag", "stem", "tokens"]

_WORD = re.compile(r"[a-z\u00e0-\u024f0-9]+(?:['\u2019][a-z\u00e0-\u024f]+)?")
_STOP = frozenset(
    """a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each few
    for from further had has have having he her here hers him his how i if in into is it its
    itself just me more most my no nor not now of off on once only or other our ours out over
    own same she should so some such than that the their theirs them then there these they
    this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours us dear yours faithfully sincerely regards many
    much one two three also well very make made need needs new way ways would like
    y yr ac ar at i o yn mae ein eu eich gan gyda hyn hynny ond neu wedi bod sydd fel am
    pan ni nhw chi fe fo hi ei dy fy""".split()
)
_SUFFIXES = ("ations", "ation", "ings", "ing", "ies", "ied", "ed", "es", "ly", "s")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light English stem: enough to make 'contracts' meet 'contract'."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            base = word[: -len(suffix)]
            return base + "y" if suffix in ("ies", "ied") else base
    return word


class _Stems(dict[str, str]):
    """Word -> its stem, or "" for a word left out (a stop word, a single letter)."""

    def __missing__(self, word: str) -> str:
        found = "" if word in _STOP or len(word) <= 1 else stem(word)
        if len(self) < 200_000:  # a bound, as stem's own cache has
            self[word] = found
        return found


_stems = _Stems()


def tokens(text: str) -> list[str]:
    """Lower-cased stems of a text's words, stop words left out."""
    stems = _stems
    return [s for w in _WORD.findall(text.lower().replace("\u2019", "'")) if (s := stems[w])]


@dataclass(frozen=True)
class QuestionSpec:
    """What the scorer needs of one configured question."""

    key: str
    title: str
    text: str = ""
    keywords: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    number: int = 0  # its place in the call, from 1: "Question 2" names it


@dataclass(frozen=True)
class Tag:
    """One question a passage speaks to: the score (0..1) and why."""

    key: str
    score: float
    keywords: tuple[str, ...] = ()
    example: str = ""
    heading: str = ""
    meaning: float | None = None  # embedding similarity, when a model is configured

    @property
    def reason(self) -> str:
        parts = []
        if self.heading:
            parts.append(f"heading names the question: {self.heading!r}")
        if self.keywords:
            parts.append("keywords: " + ", ".join(self.keywords))
        if self.example:
            parts.append(f"nearest example: {self.example!r}")
        if self.meaning is not None:
            parts.append(f"meaning similarity {self.meaning:.2f}")
        return "; ".join(parts) or "overall wording"


@dataclass
class _Profile:
    spec: QuestionSpec
    terms: dict[str, float] = field(default_factory=dict)  # stem -> weight
    words: dict[str, str] = field(default_factory=dict)  # stem -> a keyword as written
    phrases: list[tuple[tuple[str, ...], str]] = field(default_factory=list)
    examples: list[tuple[dict[str, float], str]] = field(default_factory=list)
    title_terms: frozenset[str] = frozenset()
    # Derived once: each phrase as it is looked for (" stem stem ", after its first
    # stem: no passage without that one holds the phrase), and every term of any
    # example (a passage term in none of them adds nothing to a similarity).
    phrase_keys: list[tuple[str, str, str]] = field(default_factory=list)
    example_terms: frozenset[str] = frozenset()


# Calibrated on the calibration half of benchmarks/data (see benchmarks/questions.py).
TERM_WEIGHT = 1.0
PHRASE_WEIGHT = 1.5
EXAMPLE_WEIGHT = 3.0
HEADING_WEIGHT = 4.0
HEADING_MIN_TOKENS = 6
SCALE = 4.0
# Weight of the embedding similarity (the [embeddings] extra), counted above this floor:
# unrelated sentences still score around 0.2 to 0.3 with most models.
MEANING_WEIGHT = 10.0
MEANING_FLOOR = 0.3

# key -> (similarity, nearest text): what an embedding model says of one passage.
Similarity = Callable[[str], dict[str, tuple[float, str]]]


class Scorer:
    """Scores passages against a fixed set of questions; build once, use for many."""

    def __init__(
        self,
        questions: Sequence[QuestionSpec],
        threshold: float = 0.52,
        second_ratio: float = 1.0,
        meaning: Similarity | None = None,
    ) -> None:
        self.questions = list(questions)
        self.meaning = meaning
        self.threshold = threshold
        self.second_ratio = second_ratio
        bags = [self._bag(q) for q in self.questions]
        count = max(len(bags), 1)
        df: Counter[str] = Counter()
        for bag in bags:
            df.update(set(bag))
        self._idf = {t: math.log(1 + count / n) for t, n in df.items()}
        example_df: Counter[str] = Counter()
        all_examples = [tokens(e) for q in self.questions for e in q.examples]
        for example in all_examples:
            example_df.update(set(example))
        total = max(len(all_examples), 1)
        self._example_idf = {t: math.log(1 + total / n) for t, n in example_df.items()}
        self._cue_cache: dict[str, frozenset[str]] = {}
        self._profiles = [
            self._profile(q, bag) for q, bag in zip(self.questions, bags, strict=True)
        ]

    @staticmethod
    def _bag(question: QuestionSpec) -> Counter[str]:
        bag: Counter[str] = Counter()
        for text in (question.title, question.text, *question.examples):
            bag.update(tokens(text))
        for keyword in question.keywords:
            bag.update(tokens(keyword) * 2)
        return bag

    def _vector(self, words: Iterable[str]) -> dict[str, float]:
        counts = Counter(words)
        vector = {t: (1 + math.log(n)) * self._example_idf.get(t, 1.0) for t, n in counts.items()}
        norm = math.sqrt(sum(v * v for v in vector.values())) or 1.0
        return {t: v / norm for t, v in vector.items()}

    def _profile(self, question: QuestionSpec, bag: Counter[str]) -> _Profile:
        profile = _Profile(question, title_terms=frozenset(tokens(question.title)))
        keyword_stems: set[str] = set()
        for keyword in question.keywords:
            stems = tuple(tokens(keyword))
            if len(stems) > 1:
                profile.phrases.append((stems, keyword))
            for s in stems:
                keyword_stems.add(s)
                profile.words.setdefault(s, keyword if len(stems) == 1 else s)
        for term in bag:
            boost = 1.0 if term in keyword_stems else 0.5
            profile.terms[term] = TERM_WEIGHT * boost * self._idf[term]
        for example in question.examples:
            profile.examples.append((self._vector(tokens(example)), example))
        profile.phrase_keys = [
            (stems[0], f" {' '.join(stems)} ", kw) for stems, kw in profile.phrases
        ]
        profile.example_terms = frozenset(t for vector, _ in profile.examples for t in vector)
        return profile

    def _cues(self, heading: str) -> frozenset[str]:
        """The keys of the questions a heading names (remembered: sections repeat it)."""
        found = self._cue_cache.get(heading)
        if found is None:
            head = tokens(heading)
            found = frozenset(
                p.spec.key for p in self._profiles if self._heading_cue(p, heading, head)
            )
            if len(self._cue_cache) < 10_000:
                self._cue_cache[heading] = found
        return found

    def _heading_cue(self, profile: _Profile, heading: str, head_tokens: list[str]) -> bool:
        if not heading:
            return False
        lowered = heading.lower()
        spec = profile.spec
        numbered = re.search(r"\b(?:question|q|cwestiwn)\s*\(?([0-9]{1,2}|[a-d])\)?\b", lowered)
        if numbered:
            label = numbered.group(1)
            return label in (str(spec.number), spec.key.lower())
        if re.match(rf"^\(?{re.escape(spec.key.lower())}[.)]\s", lowered):
            return True
        head = set(head_tokens)
        if head and profile.title_terms:
            overlap = len(head & profile.title_terms) / len(profile.title_terms)
            if overlap >= 0.5:
                return True
        joined = " ".join(head_tokens)
        return any(" ".join(stems) in joined for stems, _ in profile.phrases)

    def score(self, text: str, heading: str = "") -> list[Tag]:
        """Every question's tag for one passage, best first (untagged ones included)."""
        words = tokens(text)
        if not words:
            return [Tag(p.spec.key, 0.0) for p in self._profiles]
        present = set(words)
        joined = " " + " ".join(words) + " "
        vector = self._vector(words)
        length_norm = max(1.0, len(words) / 60) ** 0.5
        cues = self._cues(heading) if heading else frozenset()
        meanings = self.meaning(text) if self.meaning is not None else {}
        found: list[Tag] = []
        for profile in self._profiles:
            terms = profile.terms
            matched = [t for t in present if t in terms]
            raw = sum(terms[t] for t in matched)
            phrases = [
                kw for first, key, kw in profile.phrase_keys if first in present and key in joined
            ]
            raw += PHRASE_WEIGHT * len(phrases)
            best_sim, best_example = 0.0, ""
            # The cosine over the terms an example shares, in the passage's order: the
            # terms it lacks would only add 0.0 to the sum.
            shared = [(t, v) for t, v in vector.items() if t in profile.example_terms]
            for example_vector, example in profile.examples:
                sim = sum(v * example_vector[t] for t, v in shared if t in example_vector)
                if sim > best_sim:
                    best_sim, best_example = sim, example
            raw += EXAMPLE_WEIGHT * best_sim
            raw /= length_norm
            meaning, nearest = meanings.get(profile.spec.key, (None, ""))
            if meaning is not None:
                raw += MEANING_WEIGHT * max(0.0, meaning - MEANING_FLOOR)
                if best_sim < 0.15 and meaning > MEANING_FLOOR:
                    best_sim, best_example = 1.0, nearest  # name it in the reason
            # A heading names the question of the passages under it, but a sign-off or a
            # "see appendix" line under it still answers nothing: it needs some substance.
            cue = profile.spec.key in cues and len(words) >= HEADING_MIN_TOKENS
            if cue:
                raw += HEADING_WEIGHT
            score = 1 - math.exp(-raw / SCALE)
            shown = sorted({profile.words[t] for t in matched if t in profile.words} | set(phrases))
            found.append(
                Tag(
                    profile.spec.key,
                    round(score, 4),
                    tuple(shown[:12]),
                    best_example if best_sim >= 0.15 else "",
                    heading if cue else "",
                    round(meaning, 4) if meaning is not None else None,
                )
            )
        found.sort(key=lambda tag: -tag.score)
        return found

    def tag(self, text: str, heading: str = "") -> list[Tag]:
        """The questions one passage is tagged with (none, one or several)."""
        scored = self.score(text, heading)
        if not scored or scored[0].score < self.threshold:
            return []
        best = scored[0].score
        return [
            t for t in scored if t.score >= self.threshold and t.score >= self.second_ratio * best
        ]
