"""Optional OCR with the ``tesseract`` program (``[ocr] enabled = true``).

Off by default (:attr:`Limits.ocr_enabled`); without tesseract everything still works
and scans stay ``needs_ocr``. Images go straight to tesseract on standard input;
PDF pages are rendered with poppler's ``pdftoppm`` (when installed) at 300 dpi, one
page at a time. tesseract runs with ``OMP_THREAD_LIMIT=1``: on two cores its own
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

__all__ = ["PARSER", "available", "recognize"]

PARSER = Parser("tesseract", "")


def available() -> bool:
    """True when the tesseract program is installed."""
    return shutil.which("tesseract") is not None


def recognize(data: bytes, detected: str, ctx: ExtractContext, cause: NeedsOcr
              ) -> Extraction:
    """OCR an image or a scanned PDF; re-raises ``cause`` when that is not possible."""
    from parsers.context import Extraction

    if detected.startswith("image/"):
        return Extraction(text=_tesseract(data, ctx), pages=1, parser=_parser())
    renderer = shutil.which("pdftoppm")
    if detected != "application/pdf" or renderer is None or not cause.pages:
        raise cause
    texts = []
    for page in range(1, cause.pages + 1):
        ctx.check_time(f" after OCR of {page - 1} of {cause.pages} pages")
        image = _run([renderer, "-r", "300", "-gray", "-f", str(page), "-l", str(page), "-"],
                     data, ctx)
        texts.append(_tesseract(image, ctx))
    return Extraction(text="\n\n".join(texts), pages=cause.pages, parser=_parser())


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
