"""What the pipeline and the stages need of the application, as a type.

:class:`intake.app.App` builds the parts; the modules it builds them from (the
pipeline, the stages) see them only through :class:`AppContext`, so nothing below
``intake.app`` imports it, not even for type hints.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from parsers import ExtractionPool

    from .config import Settings
    from .mail.smtp import Mailer

__all__ = ["AppContext"]


class AppContext(Protocol):
    """The application's parts, as the pipeline and the stages use them."""

    settings: Settings
    now: Callable[[], dt.datetime]
    # A stage's prepare() leaves per-submission work here for its run_many().
    stage_cache: dict[tuple[str, int], object]
    # What a stage process runs (Pipeline.stages_in_parallel starts it).
    stage_process: Callable[..., Any]
    # What starts the extraction workers (a process worker gives each job slot one).
    pool_factory: Callable[[], ExtractionPool]

    @property
    def sessions(self) -> sessionmaker[Session]: ...

    @property
    def engine(self) -> Engine: ...

    @property
    def pool(self) -> ExtractionPool: ...

    @property
    def cutoff(self) -> dt.datetime: ...

    def mailer(self) -> Mailer | None: ...

    def close_pool(self) -> None: ...

    def close(self) -> None: ...
