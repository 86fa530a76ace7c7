"""The ``tag`` stage: a response's passages, the questions they answer, who sent it.

For one submission, or a claimed batch in one go, inside the caller's transaction:
cut the body and every readable attachment into passages, score each against the
configured ``[[questions]]``, classify the respondent, and store it all through
:mod:`store.tags`, which keeps every decision a person has made.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from store import campaigns, tags

from ..analysis.passages import split_response
from ..analysis.respondent import classify_respondent
from ..analysis.scorer import QuestionSpec, Scorer
from ..config import AnalysisSettings, QuestionSettings, Settings

if TYPE_CHECKING:
    from ..context import AppContext

__all__ = ["run", "run_many", "scorer_for", "tag_submission", "tag_submissions"]


@lru_cache(maxsize=8)
def _scorer(questions: tuple[QuestionSettings, ...], analysis: AnalysisSettings) -> Scorer:
    specs = [
        QuestionSpec(q.key, q.title, q.text, q.keywords, q.examples, number)
        for number, q in enumerate(questions, start=1)
    ]
    meaning = None
    if analysis.model_path is not None:
        from ..analysis.embeddings import EmbeddingSimilarity

        meaning = EmbeddingSimilarity(analysis.model_path, specs)
    return Scorer(specs, analysis.threshold, analysis.second_ratio, meaning)


def scorer_for(settings: Settings) -> Scorer:
    """The scorer for the configured questions (built once per configuration)."""
    return _scorer(settings.questions, settings.analysis)


def tag_submission(
    session: Session, submission_id: int, settings: Settings, now: dt.datetime
) -> None:
    """Cut, tag and classify one submission; a response not (yet) read is left alone."""
    tag_submissions(session, [submission_id], settings, now)


def tag_submissions(
    session: Session, submission_ids: Sequence[int], settings: Settings, now: dt.datetime
) -> None:
    """Cut, tag and classify these submissions (in id order), with a few queries for all."""
    ids = sorted(set(submission_ids))
    found = tags.responses_to_tag(session, ids)
    ids = [sid for sid in ids if sid in found]
    if not ids:
        return
    # A campaign copy is counted in its campaign: only words of its own are tagged.
    scopes = campaigns.own_words_many(session, ids) if settings.campaigns.enabled else {}
    runs: list[tags.AutoRun] = []
    for sid in ids:
        response = found[sid]
        body: str | None = response.body_text
        files: tuple[tuple[str, str], ...] = response.files
        scope, additions = scopes.get(sid, ("all", None))
        if scope != "all":
            body, files = additions, ()
        new_passages: list[tags.NewPassage] = []
        if settings.questions and (body or files):
            scorer = scorer_for(settings)
            for passage in split_response(body, files):
                found_tags = tuple(
                    tags.NewTag(t.key, t.score, t.reason)
                    for t in scorer.tag(passage.text, passage.heading)
                )
                new_passages.append(
                    tags.NewPassage(
                        passage.where,
                        passage.order,
                        passage.text,
                        passage.heading,
                        passage.kind,
                        found_tags,
                    )
                )
        texts = [response.body_text or "", *(text for _, text in response.files)]
        who = classify_respondent(response.sender_email, response.sender_name, texts)
        runs.append(
            tags.AutoRun(sid, tuple(new_passages), (who.type, who.organisation, who.evidence))
        )
    tags.save_auto_many(session, runs, now)


def run(app: AppContext, session: Session, submission_id: int) -> None:
    """The stage: tag one submission inside the caller's transaction."""
    tag_submissions(session, [submission_id], app.settings, app.now())


def run_many(app: AppContext, session: Session, submission_ids: Sequence[int]) -> None:
    """The stage for a claimed batch at once, as ``run`` for each in id order would."""
    tag_submissions(session, submission_ids, app.settings, app.now())
