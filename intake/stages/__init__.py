"""The stages a stored submission goes through, in order: the registry.

A stage is a plain function ``run(app, session, submission_id) -> None`` that does
its work for ONE submission inside the caller's transaction and raises on failure;
:mod:`intake.stages.runner` claims due submissions, runs the function under its own
catch-all, and records ``done`` or the failure (``store.work``). Adding a stage is
one line at the bottom of this module::

    register(Stage("index", index.run))

Stages run in the order registered; a stage runs for a submission only once the
earlier stages of that submission are ``done``. New submissions get every stage
marked due at ingest (``ack`` only when acknowledgements are wanted); a person
makes one due again with :func:`intake.stages.runner.make_due` (``intake reparse``
makes ``read`` due, and every stage with ``redo_after_read``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from ..context import AppContext

__all__ = ["STAGES", "BatchFn", "Stage", "StageFn", "register", "stage_names"]

StageFn = Callable[["AppContext", Session, int], None]
FailFn = Callable[["AppContext", Session, int, str], None]
PrepareFn = Callable[["AppContext", Sequence[int]], None]
BatchFn = Callable[["AppContext", Session, Sequence[int]], None]


@dataclass(frozen=True)
class Stage:
    """One named step: its function, and what to record when it fails."""

    name: str
    run: StageFn
    # Called in a fresh transaction after each failed attempt (e.g. "read" marks the
    # submission failed with the reason, so the lists show it).
    on_failure: FailFn | None = None
    # Made due again whenever the submission is re-read (an index of its text, say).
    redo_after_read: bool = False
    # Marked due at ingest only when acknowledgements are wanted.
    sends_mail: bool = False
    # Optional: work for a whole claimed batch before run() is called for each (read
    # extracts every attachment of the batch at once, on all cores); results wait in
    # app.stage_cache, keyed (stage name, submission id).
    prepare: PrepareFn | None = None
    # Optional: the stage for a whole claimed batch at once, in the caller's
    # transaction (one query for fifty instead of fifty). It must leave the database
    # exactly as run() for each submission in id order would; if it raises, the
    # runner falls back to run() one submission at a time.
    run_many: BatchFn | None = None


STAGES: dict[str, Stage] = {}


def register(stage: Stage) -> Stage:
    """Add ``stage`` at the end of the order (or replace one of the same name)."""
    STAGES[stage.name] = stage
    return stage


def stage_names() -> list[str]:
    return list(STAGES)


# The campaign stage, for one submission or a batch: nothing with campaigns off.
# Campaign detection needs NumPy and the MinHash code, a tenth of a second to load:
# they load when the stage first has work, so a command that never clusters, and a
# configuration with campaigns off, starts without them.
def _cluster(app: AppContext, session: Session, submission_id: int) -> None:
    _cluster_many(app, session, [submission_id])


def _cluster_many(app: AppContext, session: Session, ids: Sequence[int]) -> None:
    if app.settings.campaigns.enabled:
        from .cluster import run_many

        run_many(app, session, ids)


from . import ack, classify, index, read, tag  # noqa: E402 - the registry must exist before they register

register(
    Stage(
        "read",
        read.run,
        on_failure=read.on_failure,
        prepare=read.prepare,
        run_many=read.run_many,
    )
)
# Before ack: an out-of-office reply is filed as such and never acknowledged.
register(Stage("classify", classify.run, redo_after_read=True, run_many=classify.run_many))
register(Stage("ack", ack.run, sends_mail=True))
register(Stage("index", index.run, redo_after_read=True, run_many=index.run_many))
# Before tag: a plain copy of a campaign's template is counted there, not tagged again.
register(Stage("cluster", _cluster, redo_after_read=True, run_many=_cluster_many))
register(Stage("tag", tag.run, redo_after_read=True, run_many=tag.run_many))
