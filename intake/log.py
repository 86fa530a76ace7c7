"""Logging for the command line: intake's own progress on stderr, third-party noise kept down.

Events are logged as a short name with key/value ``extra`` fields (``log.info("poll",
extra={"mailbox": ..., "new": 3})``); :class:`KeyValueFormatter` prints those fields
after the name, so ``-v`` shows what the program is doing rather than only "poll".
"""

from __future__ import annotations

import logging
import sys

__all__ = ["KeyValueFormatter", "configure"]

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
OWN_LOGGERS = ("intake", "parsers", "store")


class KeyValueFormatter(logging.Formatter):
    """``time LEVEL logger event key=value ...``."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD}
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
    handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
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
