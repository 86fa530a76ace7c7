"""Builds the program's parts from Settings once, for the CLI and the worker."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from parsers import ExtractionPool
from parsers.result import MB
from store.db import make_session_factory, open_database

from .config import Settings
from .mail.smtp import Mailer
from .pipeline import Pipeline, stage_loop

if TYPE_CHECKING:
    from .mail.imap import ImapInbox
    from .mail.oauth import TokenSources

__all__ = ["App"]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def stage_process(
    settings: Settings,
    now: Callable[[], dt.datetime],
    stage_names: list[str],
    verbose: int,
    events: tuple[Any, Any, Any],
    results: Any,
) -> None:
    """A stage process's main (started by ``Pipeline.stages_in_parallel``): an
    application of its own on the same settings and clock, logging as its parent."""
    from .log import configure

    configure(verbose)
    app = App(settings, now)
    # One extraction worker of its own: this process reads while its parent fetches
    # (one core each), and the parent's workers join when the parent reads too.
    app.pool_factory = lambda: ExtractionPool(settings.limits.parser_limits(), processes=1)
    try:
        stage_loop(app, stage_names, events, results)
    finally:
        app.close()


class App:
    """The parts one command needs; nothing is connected until first used."""

    # What a stage process runs; here so that the pipeline needs no import of this module.
    stage_process = staticmethod(stage_process)

    def __init__(
        self,
        settings: Settings,
        now: Callable[[], dt.datetime] = utc_now,
        *,
        create_database: bool = True,
    ) -> None:
        self.settings = settings
        self.now = now
        # False for commands that only read: a missing SQLite file is then an error
        # naming the path, not a new empty database that silently lists nothing.
        self.create_database = create_database
        # What starts the extraction workers; a benchmark or test may swap it.
        self.pool_factory: Callable[[], ExtractionPool] = self.make_pool
        self._pool: ExtractionPool | None = None
        # A stage's prepare() leaves per-submission work here for its run(); the
        # runner empties it after each batch.
        self.stage_cache: dict[tuple[str, int], object] = {}
        self._token_sources: TokenSources | None = None
        self._token_lock = threading.Lock()

    @property
    def pool(self) -> ExtractionPool:
        """The extraction workers, started on first use (an idle poll starts none)."""
        if self._pool is None:
            self._pool = self.pool_factory()
        return self._pool

    def close_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    @property
    def token_sources(self) -> TokenSources:
        """OAuth2 access tokens, shared by the inbox, the mailer and `intake check`; made
        on first use, so a mailbox signed in with a password never loads OAuth2."""
        with self._token_lock:
            if self._token_sources is None:
                from .mail.oauth import TokenSources

                self._token_sources = TokenSources()
            return self._token_sources

    def _tokens(self, auth: str) -> TokenSources | None:
        """The token sources for a server signed in with ``auth`` (only "oauth2" uses them)."""
        return self.token_sources if auth == "oauth2" else None

    @cached_property
    def cutoff(self) -> dt.datetime:
        """The deadline as an instant (UTC), grace included: computed here only."""
        return self.settings.consultation.cutoff

    @cached_property
    def engine(self) -> Engine:
        return open_database(self.settings.database.connect_url, create=self.create_database)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    def make_pool(self) -> ExtractionPool:
        limits = self.settings.limits
        return ExtractionPool(limits.parser_limits(), processes=limits.workers or None)

    def mailer(self) -> Mailer | None:
        smtp = self.settings.smtp
        return Mailer(smtp, self._tokens(smtp.auth)) if smtp is not None else None

    def pipeline(self, *, acks: bool = True) -> Pipeline:
        return Pipeline(self, acks=acks)

    def inbox_factory(self) -> Callable[[], ImapInbox] | None:
        imap = self.settings.imap
        if imap is None:
            return None
        from .mail.imap import ImapInbox  # imap_tools: only for an IMAP inbox

        limit = int(self.settings.limits.max_message_mb * MB)
        tokens = self._tokens(imap.auth)
        return lambda: ImapInbox(imap, max_message_bytes=limit, now=self.now, tokens=tokens)

    def close(self) -> None:
        self.close_pool()
        if self._token_sources is not None:
            self._token_sources.close()
        if "engine" in self.__dict__:
            self.engine.dispose()
