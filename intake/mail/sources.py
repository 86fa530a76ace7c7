"""Local sources of mail: a Maildir inbox, and files given to ``intake import``.

These have no UIDs, so de-duplication rests on the (Message-ID, SHA-256) key alone:
every poll reads every file again. That suits a small local inbox and backfills;
a busy consultation inbox belongs on IMAP.

``intake import`` takes only mail: ``.eml`` files, mbox files, Maildir folders,
Outlook ``.msg`` files (turned into the message they hold) and plain folders of
these. Anything else -- a text file, a PDF, random bytes -- is skipped with its
reason (:func:`scan_import`), because a stored submission is permanent.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import logging
import mailbox
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import MailboxError
from .message import FetchedMail

log = logging.getLogger(__name__)

__all__ = [
    "ImportItem",
    "import_files",
    "looks_like_mail",
    "msg_to_eml",
    "read_path",
    "scan_import",
]

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# A header line: a field name of printable ASCII without a colon, then a colon.
_HEADER_LINE = re.compile(rb"^[!-9;-~]{1,76}:")
_MAIL_FIELDS = {
    b"from",
    b"sender",
    b"date",
    b"message-id",
    b"received",
    b"subject",
    b"to",
    b"mime-version",
    b"return-path",
    b"delivered-to",
}


@dataclass(frozen=True)
class ImportItem:
    """One message found for import, or one thing skipped (``mail`` None) and why."""

    source: str
    mail: FetchedMail | None = None
    skipped: str = ""


def looks_like_mail(raw: bytes) -> str:
    """Why ``raw`` is not an email message; empty when it looks like one.

    An RFC 5322 message starts with header lines; we want at least a From (or Sender)
    and one more of the usual fields, with no NUL bytes in the header.
    """
    if not raw.strip():
        return "empty file"
    head = raw[:65536].replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    if b"\0" in head:
        return "not an email message (binary data)"
    lines = head.split(b"\n")
    if not _HEADER_LINE.match(lines[0]):
        return "not an email message (it does not start with mail headers)"
    names = {line.split(b":", 1)[0].strip().lower() for line in lines if _HEADER_LINE.match(line)}
    if not names & {b"from", b"sender"}:
        return "not an email message (no From header)"
    if len(names & _MAIL_FIELDS) < 2:
        return "not an email message (too few mail headers)"
    return ""


def msg_to_eml(data: bytes) -> bytes:
    """The email an Outlook ``.msg`` file holds, as RFC 822 bytes.

    Raises:
        ValueError: the file is damaged, or holds something other than an email
            (a contact, an appointment, a task).
    """
    from extract_msg import openMsg  # slow to import; only backfills need it
    from extract_msg.exceptions import ExMsgBaseException
    from extract_msg.msg_classes import MessageBase

    try:
        item: Any = openMsg(data)
    except (ExMsgBaseException, OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"a damaged Outlook file ({type(exc).__name__})") from exc
    try:
        if not isinstance(item, MessageBase):
            raise ValueError(f"an Outlook {type(item).__name__.lower()}, not an email")
        converted = item.asEmailMessage()
        for name in set(converted.keys()):
            if not str(converted.get(name, "")).strip():
                del converted[name]  # Outlook leaves empty Message-Id:, Cc:, Bcc: behind
        sender = str(converted.get("From", ""))
        if "@" not in sender:
            # Without transport headers Outlook gives only the display name; the
            # address is in the sender properties (SMTP, else the plain one).
            for stream in ("__substg1.0_5D01", "__substg1.0_0C1F", "__substg1.0_0065"):
                address = item.getStringStream(stream) or ""
                if "@" in address and "/" not in address:
                    del converted["From"]
                    converted["From"] = email.utils.formataddr((sender.strip(), address.strip()))
                    break
        return bytes(converted.as_bytes(policy=email.policy.default))
    except (ExMsgBaseException, OSError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise ValueError(f"an Outlook file that could not be read ({type(exc).__name__})") from exc
    finally:
        item.close()


def scan_import(paths: Iterable[Path]) -> list[Path]:
    """The files an import will look at, in order: Maildirs and folders are opened up.

    Hidden files and a Maildir's ``tmp/`` (messages still being written) are left out.
    """
    found: list[Path] = []
    for path in paths:
        if _is_maildir(path):
            for sub in ("cur", "new"):
                found += sorted(p for p in (path / sub).iterdir() if _visible_file(p))
        elif path.is_dir():
            found += sorted(
                p
                for p in path.rglob("*")
                if _visible_file(p) and not any(part.startswith(".") for part in p.parts)
            )
        else:
            found.append(path)
    return found


def _visible_file(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".")


def import_files(
    files: Iterable[Path],
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    max_message_bytes: int | None = None,
) -> Iterator[tuple[Path, ImportItem]]:
    """Each message in ``files`` (see :func:`scan_import`), or why a file was skipped."""
    for path in files:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            yield path, ImportItem(str(path), skipped=f"cannot be read ({exc.strerror})")
            continue
        if raw.startswith(b"From "):
            yield from ((path, item) for item in _mbox_items(path, now, max_message_bytes))
            continue
        if raw.startswith(_OLE_MAGIC):
            try:
                raw = msg_to_eml(raw)
            except ValueError as exc:
                yield path, ImportItem(str(path), skipped=f"{exc}")
                continue
        reason = looks_like_mail(raw)
        log.info("import", extra={"file": str(path), "skipped": reason or "no"})
        if reason:
            yield path, ImportItem(str(path), skipped=reason)
        else:
            yield path, ImportItem(str(path), mail=_fetched(raw, now(), max_message_bytes))


def _mbox_items(
    path: Path, now: Callable[[], dt.datetime], limit: int | None
) -> Iterator[ImportItem]:
    box = mailbox.mbox(path, factory=None, create=False)
    try:
        for number, key in enumerate(box.iterkeys(), start=1):
            with box.get_file(key) as handle:
                raw = handle.read()
            source = f"{path} (message {number})"
            reason = looks_like_mail(raw)
            if reason:
                yield ImportItem(source, skipped=reason)
            else:
                yield ImportItem(source, mail=_fetched(raw, now(), limit))
    finally:
        box.close()


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
    log.info("reading", extra={"path": str(path), "messages": len(box)})
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
