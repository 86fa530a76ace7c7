"""Logging: every event carries the mailbox, UID, reference and stage it is about.

Code binds these once, where it learns them (:func:`bound`, a context variable, so
threads and nested calls each see their own), or passes them as ``extra=``; the
:class:`ContextFilter` on our handler appends them to the line as ``key=value``
pairs, which the default format used to drop. Never bind secrets or texts.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["FORMAT", "KEYS", "ContextFilter", "bound", "configure"]

# The keys printed after the message, in this order, when an event has them.
KEYS = ("mailbox", "uidvalidity", "uid", "uids", "reference", "submission", "stage", "lease")
FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s%(context)s"

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


def configure(level: int) -> None:
    """Log to stderr at ``level`` with the context keys printed (the CLI calls this)."""
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(logging.Formatter(FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
