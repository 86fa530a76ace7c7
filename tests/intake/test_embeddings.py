"""The optional embedding similarity, with a tiny model2vec model made here (no download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from model2vec import StaticModel
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.normalizers import Lowercase
from tokenizers.pre_tokenizers import Whitespace

from intake.analysis.embeddings import EmbeddingError, EmbeddingSimilarity
from intake.analysis.scorer import QuestionSpec, Scorer
from intake.stages.tag import scorer_for
from tests.conftest import make_settings

QUESTIONS = [
    QuestionSpec(
        "a",
        "Trends",
        "What trends shape services?",
        ("trend",),
        ("Budgets fall and demand rises.",),
        1,
    ),
    QuestionSpec(
        "b",
        "Scale fail",
        "Where did big contracts fail?",
        ("contract",),
        ("The outsourcing contract collapsed.",),
        2,
    ),
]
PASSAGE = "Everything is tightening and the squeeze never stops."


def _model(folder: Path) -> Path:
    """Words of question a (and two synonyms) point one way, question b's another."""
    words = {"[UNK]": 0}
    axis: dict[str, int] = {}
    for index, question in enumerate(QUESTIONS):
        for text in (question.text, *question.examples):
            for word in text.lower().replace("?", " ").replace(".", " ").split():
                words.setdefault(word, len(words))
                axis.setdefault(word, index)
    for synonym in ("tightening", "squeeze"):
        words[synonym] = len(words)
        axis[synonym] = 0
    vectors = np.full((len(words), 3), 0.01, dtype=np.float32)
    for word, index in words.items():
        if word in axis:
            vectors[index, axis[word]] = 1.0
    tokenizer = Tokenizer(WordLevel(words, unk_token="[UNK]"))
    tokenizer.normalizer = Lowercase()
    tokenizer.pre_tokenizer = Whitespace()
    StaticModel(vectors=vectors, tokenizer=tokenizer, normalize=True).save_pretrained(str(folder))
    return folder


class TestEmbeddings:
    def test_meaning_tags_a_passage_without_keywords(self, tmp_path: Path) -> None:
        """Lexically the passage answers nothing; the model's similarity tags it a, with why."""
        assert Scorer(QUESTIONS).tag(PASSAGE) == []
        meaning = EmbeddingSimilarity(_model(tmp_path / "model"), QUESTIONS)
        found = Scorer(QUESTIONS, meaning=meaning).tag(PASSAGE)
        assert [t.key for t in found] == ["a"]
        assert found[0].meaning is not None and found[0].meaning > 0.5
        assert "meaning similarity" in found[0].reason

    def test_folder_without_a_model_is_an_error(self, tmp_path: Path) -> None:
        """A folder that holds no model is refused with the key to fix; nothing is fetched."""
        with pytest.raises(EmbeddingError, match="analysis.model_path"):
            EmbeddingSimilarity(tmp_path, QUESTIONS)

    def test_configured_model_path_reaches_the_stage(self, tmp_path: Path) -> None:
        """[analysis] model_path makes the stage's scorer use the model."""
        folder = _model(tmp_path / "model")
        extra = _questions_toml() + f'\n[analysis]\nmodel_path = "{folder}"\n'
        settings = make_settings(f"sqlite:///{tmp_path / 'x.db'}", extra=extra)
        scorer = scorer_for(settings)
        assert scorer.meaning is not None
        assert [t.key for t in scorer.tag(PASSAGE)] == ["a"]


def _questions_toml() -> str:
    tables = []
    for q in QUESTIONS:
        tables.append(
            f'[[questions]]\nkey = "{q.key}"\ntitle = "{q.title}"\ntext = "{q.text}"\n'
            f"keywords = {list(q.keywords)!r}\nexamples = {list(q.examples)!r}\n".replace("'", '"')
        )
    return "\n".join(tables)
