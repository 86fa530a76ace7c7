"""The ``tag`` stage: a response's passages, the questions they answer, who sent it.

For one submission, inside the caller's transaction: cut the body and every
readable attachment into passages, score each against the configured
``[[questions]]``, classify the respondent, and store it all through
:mod:`store.tags`, which keeps every decision a person has made.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from store import campaigns, tags
from store.models import Submission, SubmissionKind, SubmissionStatus

from ..analysis.passages import split_response
from ..analysis.respondent import classify_respondent
from ..analysis.scorer import QuestionSpec, Scorer
from ..config import AnalysisSettings, QuestionSettings, Settings

if TYPE_CHECKING:
    from ..app import App

__all__ = ["run", "scorer_for", "tag_submission"]


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
    submission = session.get(Submission, submission_id)
    if (
        submission is None
        or submission.kind != SubmissionKind.RESPONSE
        or submission.status != SubmissionStatus.PARSED
    ):
        return
    readable = [
        (att.filename, att.text)
        for att in submission.attachments
        if att.text and att.parse_status == "ok"
    ]
    new_passages: list[tags.NewPassage] = []
    body, files = submission.body_text, readable
    if settings.campaigns.enabled:
        # A campaign copy is counted in its campaign: only words of its own are tagged.
        scope, additions = campaigns.own_words(session, submission_id)
        if scope != "all":
            body, files = additions, []
    if settings.questions and (body or files):
        scorer = scorer_for(settings)
        for passage in split_response(body, files):
            found = tuple(
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
                    found,
                )
            )
    texts = [submission.body_text or "", *(text or "" for _, text in readable)]
    who = classify_respondent(submission.sender_email, submission.sender_name, texts)
    tags.save_auto(
        session, submission_id, new_passages, (who.type, who.organisation, who.evidence), now
    )


def run(app: App, session: Session, submission_id: int) -> None:
    """The stage: tag one submission inside the caller's transaction."""
    tag_submission(session, submission_id, app.settings, app.now())
