"""Optional meaning similarity from a sentence-embedding model on disk.

Installed with ``pip install 'consultation-intake[embeddings]'`` (model2vec: static
embeddings, numpy only, no torch) and switched on by ``[analysis] model_path``, a
folder holding a model2vec model (``config.json``, ``model.safetensors``,
``tokenizer.json``). Nothing is downloaded: a path that is not such a folder is an
error. :class:`EmbeddingSimilarity` turns a passage into, per question, its cosine
similarity with the nearest of the question's text and examples; the scorer adds
it to the lexical evidence and names the example in the tag's reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import IntakeError
from .scorer import QuestionSpec

__all__ = ["EmbeddingError", "EmbeddingSimilarity"]

_FILES = ("config.json", "tokenizer.json")


class EmbeddingError(IntakeError):
    """The embedding model cannot be used: the extra is missing or the folder is not a model."""


class EmbeddingSimilarity:
    """Per-question similarity of a passage to the questions' texts and examples."""

    def __init__(self, model_path: Path, questions: Sequence[QuestionSpec]) -> None:
        missing = [name for name in _FILES if not (model_path / name).is_file()]
        if missing:
            raise EmbeddingError(
                f"analysis.model_path: {model_path} is not a model2vec model folder "
                f"(no {', '.join(missing)}); nothing is downloaded"
            )
        try:
            import numpy as np
            from model2vec import StaticModel
        except ImportError as exc:
            raise EmbeddingError(
                "analysis.model_path is set but the embeddings extra is not installed: "
                "pip install 'consultation-intake[embeddings]'"
            ) from exc
        self._np: Any = np
        self._model: Any = StaticModel.from_pretrained(str(model_path), normalize=True)
        self._keys: list[str] = []
        self._texts: list[str] = []
        for question in questions:
            for text in (question.text or question.title, *question.examples):
                self._keys.append(question.key)
                self._texts.append(text)
        self._matrix: Any = self._encode(self._texts)

    def _encode(self, texts: Sequence[str]) -> Any:
        vectors = self._np.asarray(self._model.encode(list(texts)), dtype="float32")
        norms = self._np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return vectors / norms

    def __call__(self, text: str) -> dict[str, tuple[float, str]]:
        """For each question key: (best cosine similarity, the text it was nearest to)."""
        sims = self._matrix @ self._encode([text])[0]
        found: dict[str, tuple[float, str]] = {}
        for index, key in enumerate(self._keys):
            value = float(sims[index])
            if key not in found or value > found[key][0]:
                found[key] = (value, self._texts[index])
        return found
