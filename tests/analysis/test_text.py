"""Fingerprints and signatures asked for again come from memory, unchanged."""

from __future__ import annotations

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
