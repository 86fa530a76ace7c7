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
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from functools import cache
from itertools import accumulate
from typing import TYPE_CHECKING

import numpy as np

from parsers.result import MB

if TYPE_CHECKING:
    from datasketch import MinHash

__all__ = [
    "NUM_PERM",
    "Fingerprint",
    "band_keys",
    "fingerprint",
    "minhash",
    "overlap",
    "own_runs",
    "signature",
]

NUM_PERM = 128
_SEED = 17
_WORD = re.compile(r"[^\W_]+")  # letters and digits of any script; "don't" is two words
_SPLIT = re.compile(r"([^\W_]+)")
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
# An ASCII text's words: every byte that is not a letter or digit made a space (for
# ASCII, exactly what _WORD finds, at a fraction of the cost).
_ASCII_WORDS = bytes(c if chr(c).isalnum() else 0x20 for c in range(128)) + b" " * 128
# MurmurHash3's 32-bit finalizer (shifts and multipliers), as datasketch mixes each value.
_FMIX32 = (16, 0x85EBCA6B, 13, 0xC2B2AE35, 16)
_MAX_HASH32 = np.uint32(0xFFFFFFFF)
_CHUNK = 4096  # shingles per step of a signature: 2 MB of work at a time


@cache
def _template() -> MinHash:
    # datasketch (and the SciPy it pulls in) costs about half a second to import:
    # loaded on first use, so commands that never compare texts start without it.
    from datasketch import MinHash

    return MinHash(num_perm=NUM_PERM, seed=_SEED, hashfunc=int)


@dataclass(frozen=True, eq=False)
class Fingerprint:
    """One text's normalised words and its shingle set."""

    words: int  # how many
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


class _ByteWordHashes(dict[bytes, int]):
    """The same for words already encoded (an ASCII text's)."""

    def __missing__(self, word: bytes) -> int:
        if len(self) > 500_000:
            self.clear()
        value = self[word] = zlib.crc32(word) + 1
        return value


_word_hashes = _WordHashes()
_byte_word_hashes = _ByteWordHashes()


class _Recent:
    """The last results made, by a digest of their input, within a byte budget.

    The cluster stage asks for one response's fingerprint and signature several times
    (its band keys, its version family, the campaigns around it, each member's
    description): remembering the recent ones makes each asking after the first cost
    a digest of the text instead of seconds of hashing per thousand responses.
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.held = 0
        self._items: OrderedDict[bytes, tuple[object, int]] = OrderedDict()
        self._lock = threading.Lock()  # the web view's threads may ask too

    def get(self, key: bytes) -> object | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            self._items.move_to_end(key)
            return found[0]

    def put(self, key: bytes, value: object, size: int) -> None:
        if size > self.budget // 4:
            return  # one huge text must not push out everything else
        with self._lock:
            if key in self._items:
                return
            self._items[key] = (value, size)
            self.held += size
            while self.held > self.budget:
                _, (_, dropped) = self._items.popitem(last=False)
                self.held -= dropped


_fingerprints = _Recent(64 * MB)
_signatures = _Recent(8 * MB)


def _digest(data: bytes, k: int) -> bytes:
    return hashlib.blake2b(data, digest_size=20, person=k.to_bytes(2, "big")).digest()


def fingerprint(text: str, k: int = 5) -> Fingerprint:
    """Words and shingles of ``text``; a text shorter than ``k`` words is one shingle.

    The result is shared with other callers asking for the same text: treat it as
    read-only (its arrays are marked so).
    """
    key = _digest(text.encode("utf-8", "surrogatepass"), k)
    found = _fingerprints.get(key)
    if isinstance(found, Fingerprint):
        return found
    made = _fingerprint(text, k)
    made.shingles.flags.writeable = False
    made.positions.flags.writeable = False
    _fingerprints.put(key, made, made.shingles.nbytes + made.positions.nbytes + 200)
    return made


def _fingerprint(text: str, k: int) -> Fingerprint:
    lowered = text.lower()
    if lowered.isascii():  # the usual case: words split and hashed as bytes
        encoded = lowered.encode("ascii").translate(_ASCII_WORDS).split()
        key = hashlib.blake2b(b" ".join(encoded), digest_size=16).hexdigest()
        n = len(encoded)
        hashes = np.fromiter(map(_byte_word_hashes.__getitem__, encoded), np.uint64, count=n)
    else:
        words = _WORD.findall(lowered)
        key = hashlib.blake2b(" ".join(words).encode("utf-8"), digest_size=16).hexdigest()
        n = len(words)
        hashes = np.fromiter(map(_word_hashes.__getitem__, words), np.uint64, count=n)
    if not n:
        empty = np.zeros(0, dtype=np.uint32)
        return Fingerprint(0, empty, empty, key)
    width = min(k, n, len(_MULTIPLIERS))
    count = n - width + 1
    mixed = np.zeros(count, dtype=np.uint64)
    for j in range(width):
        mixed += hashes[j : j + count] * _MULTIPLIERS[j]  # wraps modulo 2**64, as meant
    folded = ((mixed >> np.uint64(32)) ^ mixed) & np.uint64(0xFFFFFFFF)
    positions = folded.astype(np.uint32)
    return Fingerprint(n, _unique(positions), positions, key)


def _unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (what ``np.unique`` gives, for less)."""
    ordered = np.sort(values)
    if ordered.size < 2:
        return ordered
    keep = np.empty(ordered.size, dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def minhash(fp: Fingerprint) -> MinHash:
    """The MinHash signature of a fingerprint's shingle set (datasketch); a fresh copy."""
    template = _template()
    return type(template)(
        num_perm=NUM_PERM,
        seed=_SEED,
        hashfunc=int,
        hashvalues=signature(fp),
        permutations=template.permutations,
        scheme=template.scheme,
    )


def signature(fp: Fingerprint) -> np.ndarray:
    """The hash values of :func:`minhash` (uint32, read-only), without datasketch.

    The same arithmetic as datasketch's ``update_batch`` in its default ``affine32``
    scheme (each shingle mixed by MurmurHash3's finalizer, then ``a * h + b`` modulo
    2**32 for each permutation, the least kept), so band keys are what they were.
    """
    key = _digest(fp.shingles.tobytes(), NUM_PERM)
    found = _signatures.get(key)
    if isinstance(found, np.ndarray):
        return found
    made = _signature(fp.shingles)
    made.flags.writeable = False
    _signatures.put(key, made, made.nbytes + 100)
    return made


@cache
def _permutations() -> tuple[np.ndarray, np.ndarray]:
    """datasketch's permutations for ``seed=_SEED`` (``MinHash._init_permutations``)."""
    gen = np.random.RandomState(_SEED)
    a = gen.randint(0, 1 << 31, NUM_PERM, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, NUM_PERM, dtype=np.uint32)
    return a[:, None], b[:, None]


def _signature(shingles: np.ndarray) -> np.ndarray:
    values = np.full(NUM_PERM, _MAX_HASH32, dtype=np.uint32)
    if not shingles.size:
        return values
    s1, m1, s2, m2, s3 = (np.uint32(v) for v in _FMIX32)
    h = shingles.astype(np.uint32)  # a copy: mixed in place below
    h ^= h >> s1
    h *= m1
    h ^= h >> s2
    h *= m2
    h ^= h >> s3
    a, b = _permutations()
    for start in range(0, h.size, _CHUNK):
        block = a * h[None, start : start + _CHUNK]  # wraps modulo 2**32, as meant
        block += b
        np.minimum(values, block.min(axis=1), out=values)
    return values


def _minhash(fp: Fingerprint) -> MinHash:
    """The signature as datasketch itself makes it (the reference :func:`signature` meets)."""
    template = _template()
    sig = type(template)(
        num_perm=NUM_PERM,
        seed=_SEED,
        hashfunc=int,
        permutations=template.permutations,
        scheme=template.scheme,
    )
    if fp.size:
        sig.update_batch(fp.shingles.tolist())
    return sig


def band_keys(sig: MinHash | np.ndarray, bands: int, rows: int) -> list[int]:
    """One signed 64-bit key per LSH band: two texts sharing a key are candidates."""
    values = np.asarray(sig if isinstance(sig, np.ndarray) else sig.hashvalues)
    if values.dtype != np.uint32:
        raise ValueError(f"signature values must be uint32, not {values.dtype}")
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
    n = member.words
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
    # text split around its words: [gap, word, gap, word, ..., gap]; ends add up in C.
    parts = _SPLIT.split(text)
    ends = list(accumulate(map(len, parts)))
    words = _WORD.findall(text.lower()) if len(parts) != 2 * n + 1 else None
    edges = np.diff(np.concatenate(([0], (~is_template).astype(np.int8), [0])))
    runs: list[str] = []
    for start, stop in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        if stop - start < min_words:
            continue
        if words is not None:  # lower-casing moved the words: quote them normalised
            runs.append(" ".join(words[start:stop]))
        else:
            runs.append(text[ends[2 * start] : ends[2 * stop - 1]])
    return runs
