"""Fingerprints and signatures asked for again come from memory, unchanged."""

from __future__ import annotations

import hashlib
import zlib

import numpy as np
import pytest

from intake.analysis import text
from intake.analysis.text import _fingerprint, _minhash, _Recent, fingerprint, minhash

WORDS = "we support the proposal but ask the council to reconsider the parking plans".split()


def _text(seed: int) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(WORDS[i] for i in rng.integers(0, len(WORDS), 400))


class TestRemembered:
    def test_same_result_as_computed_afresh(self) -> None:
        """A remembered fingerprint and signature equal freshly computed ones."""
        body = _text(1)
        first, again, fresh = fingerprint(body), fingerprint(body), _fingerprint(body, 5)
        assert again is first
        assert np.array_equal(first.shingles, fresh.shingles)
        assert np.array_equal(first.positions, fresh.positions)
        assert (first.words, first.key) == (fresh.words, fresh.key)
        assert np.array_equal(minhash(first).hashvalues, _minhash(fresh).hashvalues)
        assert np.array_equal(minhash(first).hashvalues, _minhash(fresh).hashvalues)

    def test_shingle_width_is_part_of_the_key(self) -> None:
        """The same text with another shingle width is a different fingerprint."""
        body = _text(2)
        assert not np.array_equal(fingerprint(body, 3).shingles, fingerprint(body, 5).shingles)

    def test_shared_arrays_are_read_only(self) -> None:
        """A caller cannot change the fingerprint another caller will be given."""
        found = fingerprint(_text(3))
        with pytest.raises(ValueError, match="read-only"):
            found.shingles[0] = 0

    def test_signature_is_a_fresh_copy(self) -> None:
        """Changing a returned signature leaves the remembered one alone."""
        fp = fingerprint(_text(4))
        sig = minhash(fp)
        sig.update(12345)
        assert np.array_equal(minhash(fp).hashvalues, _minhash(fp).hashvalues)

    def test_budget_drops_the_oldest(self) -> None:
        """Past its byte budget the memory forgets the least recently used first."""
        recent = _Recent(100)
        recent.put(b"a", "A", 20)
        recent.put(b"b", "B", 20)
        recent.put(b"c", "C", 20)
        assert recent.get(b"a") == "A"  # now the most recently used
        for n in range(3):
            recent.put(bytes([n]), n, 20)
        assert recent.get(b"b") is None
        assert recent.get(b"a") == "A"
        assert recent.held <= 100
        recent.put(b"huge", "H", 60)  # over a quarter of the budget: never held
        assert recent.get(b"huge") is None

    def test_budgets_bound_the_process(self) -> None:
        """The module's memories hold at most their budgets."""
        assert text._fingerprints.held <= text._fingerprints.budget
        assert text._signatures.held <= text._signatures.budget


def _reference_fingerprint(body: str, k: int) -> tuple[int, str, np.ndarray, np.ndarray]:
    """Words found by the regular expression and hashed one by one: the definition."""
    words = text._WORD.findall(body.lower())
    key = hashlib.blake2b(" ".join(words).encode("utf-8"), digest_size=16).hexdigest()
    if not words:
        return 0, key, np.zeros(0, np.uint32), np.zeros(0, np.uint32)
    hashes = np.array([zlib.crc32(w.encode("utf-8")) + 1 for w in words], dtype=np.uint64)
    width = min(k, len(words), len(text._MULTIPLIERS))
    count = len(words) - width + 1
    mixed = np.zeros(count, dtype=np.uint64)
    for j in range(width):
        mixed += hashes[j : j + count] * text._MULTIPLIERS[j]
    positions = (((mixed >> np.uint64(32)) ^ mixed) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    return len(words), key, np.unique(positions), positions


BODIES = [
    "",
    "   ",
    "one",
    "Two words",
    "don't stop_me now: 42 times, café au lait",
    "\u212aelvin sign, ASCII once lower-cased",
    "Kelvin \u212a and \u0130stanbul, \u00c9COLE \u00e9cole STRASSE stra\u00dfe",
    "tabs\tand\nnewlines\r\n\x0bvertical\x0cfeed \x00nul\x1f unit",
    "\u0663\u0664 Arabic digits, \u4e2d\u6587 words, \U0001f600 emoji, \u00b2 squared",
    "Dear team,\n\n" + " ".join(WORDS * 40) + "\n\nRegards, Ann",
    _text(7),
]


class TestSameResults:
    """The quick ways give, bit for bit, what the plain definitions give: band keys are
    stored, and a recompute must find the keys it stored before."""

    @pytest.mark.parametrize("body", BODIES)
    @pytest.mark.parametrize("k", [1, 3, 5])
    def test_fingerprint(self, body: str, k: int) -> None:
        words, key, shingles, positions = _reference_fingerprint(body, k)
        found = _fingerprint(body, k)
        assert (found.words, found.key) == (words, key)
        assert found.shingles.dtype == np.uint32
        assert np.array_equal(found.shingles, shingles)
        assert np.array_equal(found.positions, positions)

    @pytest.mark.parametrize("body", BODIES)
    def test_signature_is_datasketch_minhash(self, body: str) -> None:
        fp = _fingerprint(body, 5)
        reference = _minhash(fp)
        assert text.signature(fp).dtype == reference.hashvalues.dtype
        assert np.array_equal(text.signature(fp), reference.hashvalues)
        assert np.array_equal(minhash(fp).hashvalues, reference.hashvalues)
        assert text.band_keys(text.signature(fp), 42, 3) == text.band_keys(reference, 42, 3)

    def test_signature_of_many_shingles(self) -> None:
        """More shingles than one step takes: the least over every step."""
        rng = np.random.default_rng(3)
        body = " ".join(f"w{n}" for n in rng.integers(0, 50_000, 3 * text._CHUNK + 17))
        fp = _fingerprint(body, 5)
        assert fp.size > 2 * text._CHUNK
        assert np.array_equal(text.signature(fp), _minhash(fp).hashvalues)

    def test_band_keys_are_stable(self) -> None:
        """The keys of a fixed text: a change here would orphan every stored key."""
        keys = text.band_keys(text.signature(_fingerprint(" ".join(WORDS * 3), 5)), 42, 3)
        assert keys[:3] == EXPECTED_KEYS


# Computed with datasketch's own MinHash before the signature was made without it.
EXPECTED_KEYS = [4076200994802857200, -8914165453429409830, -1325130966562852462]
