"""The benchmark's mail: a realistic mix of responses, written straight into a Maildir.

Mix: 60% a PDF of 1-10 pages, 30% a DOCX, 10% body only; message sizes spread
log-uniformly over 20 KB-2 MB. Documents come from a small pool of cached
templates (campaigns send near-identical files), each copy stamped with its own
respondent number so every message and attachment has its own SHA-256.

Writing the files into ``cur/`` (owned by the mail user) before the server looks
at the folder is far faster than APPEND; the server indexes them on the first
SELECT, which the benchmark does before it measures anything.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from docgen import docx_template, pdf_template, stamp, stamp_docx

__all__ = ["Spec", "build_message", "message_spec", "prepare_maildir", "write_maildir"]

MIN_SIZE, MAX_SIZE = 20_000, 2_000_000
PDF_TEMPLATES, DOCX_TEMPLATES = 40, 20
_B64 = 1.37  # base64 with line breaks
_NAMES = ("Ann Smith", "Raj Patel", "Maria Lopez", "Tom Evans", "Ngozi Okafor", "Li Wei",
          "Friends of Millbrook Park", "Northside Residents' Association", "Cllr Jo Brown")


@dataclass(frozen=True)
class Spec:
    """What message ``number`` carries."""

    number: int
    kind: str  # "pdf", "docx" or "body"
    template: int  # index into the kind's template pool
    pages: int
    size: int  # target size of the attachment (or of the body)


def _log_uniform(rng: random.Random, low: int, high: int) -> int:
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


def _template_spec(kind: str, index: int) -> tuple[int, int]:
    """Pages and size of template ``index`` of a kind (fixed, so the cache is reused)."""
    rng = random.Random(f"{kind}-{index}")  # noqa: S311 - test data
    size = int(_log_uniform(rng, MIN_SIZE, MAX_SIZE) / _B64)
    return rng.randint(1, 10), size


def message_spec(number: int, seed: int = 1) -> Spec:
    rng = random.Random(number * 1_000_003 + seed)  # noqa: S311 - test data
    roll = rng.random()
    if roll < 0.6:
        template = rng.randrange(PDF_TEMPLATES)
        pages, size = _template_spec("pdf", template)
        return Spec(number, "pdf", template, pages, size)
    if roll < 0.9:
        template = rng.randrange(DOCX_TEMPLATES)
        pages, size = _template_spec("docx", template)
        return Spec(number, "docx", template, pages, size)
    return Spec(number, "body", 0, 0, _log_uniform(rng, MIN_SIZE, 60_000))


def attachment(spec: Spec) -> tuple[str, str, bytes] | None:
    """(filename, content type, bytes) of a message's attachment, or None."""
    if spec.kind == "pdf":
        data = stamp(pdf_template(spec.pages, spec.size, spec.template), spec.number)
        return f"response-{spec.number}.pdf", "application/pdf", data
    if spec.kind == "docx":
        data = stamp_docx(docx_template(spec.pages, spec.size, spec.template), spec.number)
        return (
            f"response-{spec.number}.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            data,
        )
    return None


def _body(rng: random.Random, size: int) -> str:
    words = ("we support the proposal but ask the council to reconsider the plans for the "
             "high street parking and the library opening hours in the evenings").split()
    lines, total = [], 0
    while total < size:
        line = " ".join(rng.choice(words) for _ in range(12))
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines)


def build_message(
    spec: Spec, when: dt.datetime, doc: tuple[str, str, bytes] | None = None
) -> bytes:
    """The raw message (LF line endings, as a delivery agent stores it)."""
    rng = random.Random(spec.number)  # noqa: S311 - test data
    name = rng.choice(_NAMES)
    sender = f"respondent{spec.number}@example.net"
    body_size = spec.size if spec.kind == "body" else 600
    body = (f"Dear consultation team,\n\nPlease find my response below (respondent "
            f"{spec.number}).\n\n" + _body(rng, body_size) + f"\n\nRegards,\n{name}\n")
    head = (
        f"Return-Path: <{sender}>\n"
        f"Received: from mail.example.net by mx.example.org; {_date(when)}\n"
        f'From: "{name}" <{sender}>\n'
        f"To: consultation@example.org\n"
        f"Subject: Response to the consultation ({spec.number})\n"
        f"Date: {_date(when)}\n"
        f"Message-ID: <bench-{spec.number}-{rng.getrandbits(48):012x}@example.net>\n"
        f"MIME-Version: 1.0\n"
    )
    if doc is None:
        doc = attachment(spec)
    if doc is None:
        return (head + "Content-Type: text/plain; charset=utf-8\n"
                "Content-Transfer-Encoding: 8bit\n\n" + body).encode()
    filename, content_type, data = doc
    boundary = f"=_bench_{spec.number}_{rng.getrandbits(32):08x}"
    encoded = base64.encodebytes(data)
    parts = [
        (head + f'Content-Type: multipart/mixed; boundary="{boundary}"\n\n'
         f"This is a multi-part message in MIME format.\n\n--{boundary}\n"
         "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
         + body + f"\n--{boundary}\n"
         f'Content-Type: {content_type}; name="{filename}"\n'
         f'Content-Disposition: attachment; filename="{filename}"\n'
         "Content-Transfer-Encoding: base64\n\n").encode(),
        encoded,
        f"\n--{boundary}--\n".encode(),
    ]
    return b"".join(parts)


def _date(when: dt.datetime) -> str:
    return when.strftime("%a, %d %b %Y %H:%M:%S +0000")


def prepare_maildir(root: Path, owner: tuple[int, int] | None, folder: str = "") -> Path:
    """Create the Maildir (or the ``.folder`` inside it) owned by the mail user."""
    target = root / f".{folder}" if folder else root
    for path in (root, target, target / "cur", target / "new", target / "tmp"):
        path.mkdir(mode=0o700, exist_ok=True)
        if owner is not None:
            os.chown(path, *owner)
    if folder:
        (target / "maildirfolder").touch()
        if owner is not None:
            os.chown(target / "maildirfolder", *owner)
    return target


def write_maildir(
    maildir: Path,
    messages: Iterator[tuple[bytes, dt.datetime]],
    owner: tuple[int, int] | None,
    tag: str,
) -> tuple[int, int]:
    """Write each message as a file in ``cur/``; returns (count, bytes)."""
    count = total = 0
    for raw, when in messages:
        count += 1
        total += len(raw)
        vsize = len(raw) + raw.count(b"\n")
        name = f"{int(when.timestamp())}.M{count}P{tag}.bench,S={len(raw)},W={vsize}:2,"
        path = maildir / "cur" / name
        with open(path, "wb") as handle:
            handle.write(raw)
        _finish(path, when, owner)
    return count, total


def link_maildir(
    maildir: Path, pool: list[Path], start: int, count: int, owner: tuple[int, int] | None
) -> None:
    """Fill ``cur/`` with ``count`` more entries, hard links to the ``pool`` files.

    For the big mailbox of the idle-poll figure: the server sees ``count`` distinct
    messages of realistic sizes while the disk holds only the pool.
    """
    sizes = [(p.stat().st_size, p.read_bytes().count(b"\n")) for p in pool]
    for n in range(start, start + count):
        source = pool[n % len(pool)]
        size, lines = sizes[n % len(pool)]
        name = f"{1_500_000_000 + n}.M{n}Pbig.bench,S={size},W={size + lines}:2,"
        os.link(source, maildir / "cur" / name)


def _finish(path: Path, when: dt.datetime, owner: tuple[int, int] | None) -> None:
    stamp_time = when.timestamp()
    os.utime(path, (stamp_time, stamp_time))  # INTERNALDATE is the file's mtime
    if owner is not None:
        os.chown(path, *owner)
    os.chmod(path, 0o600)
