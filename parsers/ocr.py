"""Optional OCR with the ``tesseract`` program (``[ocr] enabled = true``).

Off by default (:attr:`Limits.ocr_enabled`); without tesseract everything still works
and scans stay ``needs_ocr``. Languages come from ``[ocr] languages`` (tesseract's
names joined by ``+``, e.g. ``eng+cym``). Images go straight to tesseract on standard
input. PDF pages without a text layer are rendered by PDFium (:mod:`parsers.pdf`) and
passed to :func:`read_page`, one page at a time, each with its own timeout
(``[ocr] page_timeout_s``). tesseract runs with ``OMP_THREAD_LIMIT=1``: on two cores its own
threading is 2-2.5x slower per page, and the pool already uses every core.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from typing import TYPE_CHECKING

from parsers.errors import NeedsOcr, ParseTimeout
from parsers.versions import Parser

if TYPE_CHECKING:
    from parsers.context import ExtractContext, Extraction
    from parsers.result import Limits

__all__ = ["PARSER", "available", "read_page", "recognize"]

PARSER = Parser("tesseract", "")


def available() -> bool:
    """True when the tesseract program is installed."""
    return shutil.which("tesseract") is not None


def read_page(image: bytes, limits: Limits, timeout_s: float) -> str | None:
    """OCR one rendered page (PGM/PNG bytes); None when tesseract fails or times out."""
    program = shutil.which("tesseract") or "tesseract"
    environment = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        done = subprocess.run([program, "stdin", "stdout", "-l", limits.ocr_languages],
                              input=image, capture_output=True, env=environment,
                              timeout=timeout_s, check=False)
    except (subprocess.TimeoutExpired, OSError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", "replace")


def recognize(data: bytes, detected: str, ctx: ExtractContext, cause: NeedsOcr
              ) -> Extraction:
    """OCR a picture; re-raises ``cause`` for anything else (PDFs OCR their own pages)."""
    from parsers.context import Extraction

    if detected.startswith("image/"):
        return Extraction(text=_tesseract(data, ctx), pages=1, parser=_parser(),
                          engine="tesseract", ocr_pages=(1,))
    raise cause


def _tesseract(image: bytes, ctx: ExtractContext) -> str:
    program = shutil.which("tesseract") or "tesseract"
    output = _run([program, "stdin", "stdout", "-l", ctx.limits.ocr_languages], image, ctx)
    return output.decode("utf-8", "replace")


def _run(command: list[str], data: bytes, ctx: ExtractContext) -> bytes:
    remaining = max(ctx.deadline - time.monotonic(), 1.0)
    environment = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        done = subprocess.run(command, input=data, capture_output=True, env=environment,
                              timeout=min(remaining, 3600.0), check=False)
    except subprocess.TimeoutExpired as exc:
        raise ParseTimeout() from exc
    except OSError as exc:
        raise NeedsOcr("OCR could not be started; this scan needs to be read by hand."
                       ) from exc
    if done.returncode != 0:
        raise NeedsOcr("OCR failed on this scan; it needs to be read by hand.")
    return done.stdout


def _parser() -> Parser:
    program = shutil.which("tesseract")
    version = ""
    if program:
        try:
            out = subprocess.run([program, "--version"], capture_output=True, timeout=10,
                                 check=False)
            first = (out.stdout or out.stderr).decode("utf-8", "replace").splitlines()
            version = first[0].split()[-1] if first and first[0].split() else ""
        except (OSError, subprocess.SubprocessError):
            version = "unknown"
    return Parser("tesseract", version)
