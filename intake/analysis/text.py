"""Text fingerprints for comparing responses (pure): words, shingles, MinHash, LSH bands.

A response is reduced to its normalised words (case folded, punctuation dropped), each
word's position in the original text (so a person's own words can be quoted exactly),
and the set of its word *shingles*: every run of ``k`` consecutive words, hashed to 32
bits. Shingle hashes are stable across processes (CRC-32 of each word, mixed with fixed
multipliers), so band keys stored in the database stay comparable between runs.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass

import numpy as np
from datasketch import MinHash

__all__ = [
    "NUM_PERM",
    "Fingerprint",
    "band_keys",
    "fingerprint",
    "minhash",
    "overlap",
    "own_runs",
]

NUM_PERM = 128
_SEED = 17
_WORD = re.compile(r"[^\W_]+")  # letters and digits of any script; "don't" is two words
_MULTIPLIERS = np.array(
    [
        0x9E3779B97F4A7C15,
        0xC2B2AE3D27D4EB4F,
        0x165667B19E3779F9,
        0x27D4EB2F165667C5,
        0xFF51AFD7ED558CCD,
        0xC4CEB9FE1A85EC53,
        0x85EBCA77C2B2AE63,
        0xD6E8FEB86659FD93,
    ],
    dtype=np.uint64,
)
_word_hashes: dict[str, int] = {}
_TEMPLATE = MinHash(num_perm=NUM_PERM, seed=_SEED, hashfunc=int)


@dataclass(frozen=True, eq=False)
class Fingerprint:
    """One text's normalised words and its shingle set."""

    words: tuple[str, ...]
    shingles: np.ndarray  # sorted unique uint32 hashes
    positions: np.ndarray  # uint32 hash of the shingle starting at each word (len words-k+1)
    key: str  # digest of the normalised word sequence: equal keys, same words

    @property
    def size(self) -> int:
        return int(self.shingles.size)


class _WordHashes(dict[str, int]):
    """CRC-32 of each word, remembered (a ``map`` over ``__getitem__`` runs in C)."""

    def __missing__(self, word: str) -> int:
        if len(self) > 500_000:  # a hostile text cannot grow the cache without end
            self.clear()
        value = self[word] = zlib.crc32(word.encode("utf-8")) + 1
        return value


_word_hashes = _WordHashes()


def fingerprint(text: str, k: int = 5) -> Fingerprint:
    """Words and shingles of ``text``; a text shorter than ``k`` words is one shingle."""
    words = tuple(_WORD.findall(text.lower()))
    key = hashlib.blake2b(" ".join(words).encode("utf-8"), digest_size=16).hexdigest()
    if not words:
        empty = np.zeros(0, dtype=np.uint32)
        return Fingerprint(words, empty, empty, key)
    hashes = np.array(list(map(_word_hashes.__getitem__, words)), dtype=np.uint64)
    width = min(k, len(words), len(_MULTIPLIERS))
    count = len(words) - width + 1
    mixed = np.zeros(count, dtype=np.uint64)
    for j in range(width):
        mixed += hashes[j : j + count] * _MULTIPLIERS[j]  # wraps modulo 2**64, as meant
    folded = ((mixed >> np.uint64(32)) ^ mixed) & np.uint64(0xFFFFFFFF)
    positions = folded.astype(np.uint32)
    return Fingerprint(words, np.unique(positions), positions, key)


def minhash(fp: Fingerprint) -> MinHash:
    """The MinHash signature of a fingerprint's shingle set (datasketch)."""
    sig = MinHash(
        num_perm=NUM_PERM,
        seed=_SEED,
        hashfunc=int,
        permutations=_TEMPLATE.permutations,
        scheme=_TEMPLATE.scheme,
    )
    if fp.size:
        sig.update_batch(fp.shingles.tolist())
    return sig


def band_keys(sig: MinHash, bands: int, rows: int) -> list[int]:
    """One signed 64-bit key per LSH band: two texts sharing a key are candidates."""
    values = np.asarray(sig.hashvalues)
    keys = []
    for band in range(bands):
        chunk = values[band * rows : (band + 1) * rows].tobytes()
        digest = hashlib.blake2b(chunk, digest_size=8, person=band.to_bytes(2, "big")).digest()
        keys.append(int.from_bytes(digest, "big", signed=True))
    return keys


def overlap(a: Fingerprint, b: Fingerprint) -> int:
    """How many shingles two texts share."""
    if not a.size or not b.size:
        return 0
    return int(np.intersect1d(a.shingles, b.shingles, assume_unique=True).size)


def own_runs(member: Fingerprint, template: Fingerprint, text: str, min_words: int) -> list[str]:
    """The passages of ``text`` (the member's) that are not in the template, quoted exactly.

    A word is the template's when any shingle covering it is one of the template's; runs
    of at least ``min_words`` other words are the member's own text.
    """
    n = len(member.words)
    if n == 0:
        return []
    if not template.size:
        return [text.strip()] if n >= min_words else []
    shared = np.isin(member.positions, template.shingles, assume_unique=False)
    width = n - member.positions.size + 1
    covered = np.zeros(n + 1, dtype=np.int32)
    # Word i is covered by the shingles starting at i-width+1 .. i: a difference array.
    starts = np.flatnonzero(shared)
    np.add.at(covered, starts, 1)
    np.add.at(covered, starts + width, -1)
    is_template = np.cumsum(covered[:n]) > 0
    spans = _spans(text, member.words)
    runs: list[str] = []
    start = None
    for i in range(n + 1):
        own = i < n and not is_template[i]
        if own and start is None:
            start = i
        elif not own and start is not None:
            if i - start >= min_words:
                if spans is None:
                    runs.append(" ".join(member.words[start:i]))
                else:
                    runs.append(text[spans[start][0] : spans[i - 1][1]])
            start = None
    return runs


def _spans(text: str, words: tuple[str, ...]) -> list[tuple[int, int]] | None:
    """Each word's place in the original text (None if lower-casing moved them)."""
    spans = [m.span() for m in _WORD.finditer(text)]
    return spans if len(spans) == len(words) else None
