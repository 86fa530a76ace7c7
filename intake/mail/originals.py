"""The original files of a submission: its stored message as .eml and its attachments.

``intake show REF --save DIR`` uses this to give staff the files exactly as they were
received. Attachment names come from the sender, so they are treated as hostile:
only the last path component is kept, control and path characters are replaced, and
a file never overwrites another.
"""

from __future__ import annotations

import email
import email.header
import email.policy
import re
import unicodedata
from email.message import Message
from pathlib import Path

__all__ = ["safe_filename", "save_originals"]

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")
_MAX_NAME = 150


def safe_filename(name: str, fallback: str) -> str:
    """A file name that stays inside the folder it is written to, and is not hidden."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip(" .")
    if not name:
        name = fallback
    stem, dot, suffix = name.rpartition(".")
    if len(name) > _MAX_NAME:
        name = (stem[: _MAX_NAME - len(suffix) - 1] + "." + suffix) if dot else name[:_MAX_NAME]
    return name


def _unique(folder: Path, name: str) -> Path:
    path = folder / name
    stem, suffix = path.stem, path.suffix
    number = 1
    while path.exists():
        number += 1
        path = folder / f"{stem} ({number}){suffix}"
    return path


def _decoded(name: str) -> str:
    """A file name with its =?charset?...?= encoded words decoded, when they are valid."""
    try:
        return str(email.header.make_header(email.header.decode_header(name)))
    except (ValueError, LookupError, UnicodeError):
        return name


def _attachments(message: Message) -> list[tuple[str, bytes]]:
    found: list[tuple[str, bytes]] = []
    for number, part in enumerate(message.walk(), start=1):
        if part.is_multipart():
            continue
        filename = part.get_filename()
        disposition = part.get_content_disposition()
        if not filename and disposition != "attachment":
            continue  # a body part, not a file
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        found.append((safe_filename(_decoded(filename or ""), f"attachment-{number}"), payload))
    return found


def save_originals(reference: str, raw: bytes, folder: Path) -> list[Path]:
    """Write ``REFERENCE.eml`` and each attachment into ``folder``; return the paths written.

    Raises:
        OSError: the folder cannot be created or written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    eml = _unique(folder, safe_filename(f"{reference}.eml", "message.eml"))
    eml.write_bytes(raw)
    written.append(eml)
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    for name, data in _attachments(message):
        path = _unique(folder, name)
        with path.open("xb") as handle:
            handle.write(data)
        written.append(path)
    return written
