"""Logging: every event carries the mailbox, UID, reference and stage it is about.

Code binds these once, where it learns them (:func:`bound`, a context variable, so
threads and nested calls each see their own), or passes them as ``extra=``; the
:class:`ContextFilter` on our handler appends them to the line as ``key=value``
pairs, which the default format used to drop; any other ``extra=`` field follows them. By default
only warnings reach stderr; ``-v`` shows intake's own progress, ``-vv`` its debug
lines and the libraries' (Alembic, imaplib) too. Never bind secrets or texts.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["FORMAT", "KEYS", "ContextFilter", "KeyValueFormatter", "bound", "configure"]

# The keys printed after the message, in this order, when an event has them.
KEYS = ("mailbox", "uidvalidity", "uid", "uids", "reference", "submission", "stage", "lease")
FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s%(context)s"
OWN_LOGGERS = ("intake", "parsers", "store")
# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
_PRINTED = {*KEYS, "context"}  # printed by the filter's %(context)s already

# Immutable by convention: a new dict is set for each binding, never changed in place.
_bound: contextvars.ContextVar[dict[str, object] | None] = contextvars.ContextVar(
    "intake_log_context", default=None
)


@contextmanager
def bound(**values: object) -> Iterator[None]:
    """Attach ``values`` (mailbox=..., stage=...) to every event logged inside the block."""
    token = _bound.set({**(_bound.get() or {}), **values})
    try:
        yield
    finally:
        _bound.reset(token)


class ContextFilter(logging.Filter):
    """Puts the bound and ``extra=`` keys of an event into ``%(context)s``."""

    def filter(self, record: logging.LogRecord) -> bool:
        values = dict(_bound.get() or {})
        for key in KEYS:
            if key in record.__dict__:
                values[key] = record.__dict__[key]
        record.context = "".join(
            f" {key}={values[key]}" for key in KEYS if values.get(key) is not None
        )
        return True


class KeyValueFormatter(logging.Formatter):
    """``time LEVEL logger event key=value ...``: the bound keys, then any other ``extra``."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD and k not in _PRINTED}
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        return line


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (tests swap it)."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure(verbose: int) -> None:
    """Warnings only by default; ``-v`` intake's progress; ``-vv`` its debug and libraries'."""
    handler = _StderrHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(KeyValueFormatter(FORMAT))
    own = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    # Our handler sits on our own loggers; libraries (Alembic's migration context,
    # imaplib, aiosmtpd) reach the root logger and are shown only with -vv.
    targets = [logging.getLogger(name) for name in OWN_LOGGERS]
    root = logging.getLogger()
    for logger in [*targets, root]:
        for old in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
            logger.removeHandler(old)
    for logger in targets:
        logger.setLevel(own)
        logger.addHandler(handler)
        logger.propagate = verbose < 2  # with -vv the root handler below shows them
    if verbose >= 2:
        root.setLevel(logging.INFO)
        root.addHandler(handler)
