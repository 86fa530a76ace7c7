"""Builds the program's parts from Settings once, for the CLI and the worker."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import cached_property

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from parsers import ExtractionPool
from store.db import make_session_factory, open_database

from .config import Settings
from .mailer import Mailer
from .pipeline import Pipeline
from .poller import ImapInbox

__all__ = ["App"]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class App:
    """The parts one command needs; nothing is connected until first used."""

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
        return Mailer(smtp) if smtp is not None else None

    def pipeline(self, *, acks: bool = True) -> Pipeline:
        return Pipeline(
            self.settings, self.sessions, self.make_pool, self.now, self.mailer(), acks=acks
        )

    def inbox_factory(self) -> Callable[[], ImapInbox] | None:
        imap = self.settings.imap
        if imap is None:
            return None
        limit = int(self.settings.limits.max_message_mb * 1024 * 1024)
        return lambda: ImapInbox(imap, max_message_bytes=limit, now=self.now)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
