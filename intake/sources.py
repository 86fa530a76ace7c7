"""Local sources of mail: a Maildir inbox, and files given to ``intake import``.

These have no UIDs, so de-duplication rests on the (Message-ID, SHA-256) key alone:
every poll reads every file again. That suits a small local inbox and backfills;
a busy consultation inbox belongs on IMAP.
"""

from __future__ import annotations

import datetime as dt
import mailbox
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import MailboxError
from .message import FetchedMail

__all__ = ["read_path"]


def _is_maildir(path: Path) -> bool:
    return path.is_dir() and all((path / sub).is_dir() for sub in ("cur", "new", "tmp"))


def read_path(
    path: Path,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    max_message_bytes: int | None = None,
) -> Iterator[FetchedMail]:
    """Yield each message of an ``.eml`` file, an mbox file or a Maildir folder.

    A message over ``max_message_bytes`` yields only its header, with ``oversize``.

    Raises:
        MailboxError: the path does not exist or is none of the three.
    """
    if _is_maildir(path):
        box: mailbox.Mailbox[mailbox.Message] = mailbox.Maildir(path, factory=None, create=False)
    elif path.is_file() and _looks_like_mbox(path):
        box = mailbox.mbox(path, factory=None, create=False)
    elif path.is_file():
        yield _fetched(path.read_bytes(), now(), max_message_bytes)
        return
    else:
        raise MailboxError(
            f"{path}: not found, or not an .eml file, an mbox file or a Maildir "
            "(a folder with cur/, new/ and tmp/)"
        )
    try:
        for key in sorted(box.iterkeys()):
            if isinstance(key, str) and key.startswith("."):
                continue  # hidden files are not messages (the Maildir convention)
            with box.get_file(key) as handle:
                yield _fetched(handle.read(), now(), max_message_bytes)
    finally:
        box.close()


def _looks_like_mbox(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(5) == b"From "


def _fetched(raw: bytes, at: dt.datetime, limit: int | None) -> FetchedMail:
    if limit is not None and len(raw) > limit:
        head, sep, _ = raw.partition(b"\n\n")
        if not sep:
            head, sep, _ = raw.partition(b"\r\n\r\n")
        return FetchedMail(raw=head + sep, fetched_at=at, oversize=True, size=len(raw))
    return FetchedMail(raw=raw, fetched_at=at, size=len(raw))
