"""Legacy Word (.doc, Word 97-2003) text through the ``antiword`` program.

antiword reads the document from standard input and writes UTF-8 text without
line wrapping. Its error text decides the status: encrypted documents are
``encrypted``; files it cannot recognise or handle are ``corrupt``. When antiword
is not installed the status is ``unsupported`` with a message saying so, so a
missing program is visible to admins rather than a crash.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from functools import lru_cache
from typing import TYPE_CHECKING

from parsers.errors import CorruptDocument, EncryptedDocument, ParseTimeout, UnsupportedFormat
from parsers.versions import Parser

if TYPE_CHECKING:
    from parsers.context import ExtractContext, Extraction

__all__ = ["PARSER", "antiword_version", "extract_doc"]

PARSER = Parser("antiword", "")
_CORRUPT = ("This old-format Word document (.doc) is damaged or in a version we cannot "
            "read; please save it as .docx or PDF and send it again.")


@lru_cache(maxsize=1)
def antiword_version() -> str:
    """antiword's version, from its usage text ("" when it is not installed)."""
    program = shutil.which("antiword")
    if program is None:
        return ""
    try:
        usage = subprocess.run([program], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    match = re.search(rb"Version:\s*([\w.]+)", usage.stdout + usage.stderr)
    return match.group(1).decode() if match else "unknown"


def extract_doc(data: bytes, ctx: ExtractContext) -> Extraction:
    """Extract a .doc file with antiword (paragraphs separated by blank lines)."""
    from parsers.context import Extraction

    program = shutil.which("antiword")
    if program is None:
        raise UnsupportedFormat(
            "Old-format Word documents (.doc) cannot be read on this server (antiword is "
            "not installed); please send it as .docx or PDF.")
    remaining = max(ctx.deadline - time.monotonic(), 1.0)
    try:
        done = subprocess.run(
            [program, "-m", "UTF-8.txt", "-w", "0", "-"], input=data, capture_output=True,
            timeout=min(remaining, 3600.0), check=False)
    except subprocess.TimeoutExpired as exc:
        raise ParseTimeout() from exc
    except OSError as exc:
        raise UnsupportedFormat("The .doc reader (antiword) could not be started; "
                                "staff will look at this file by hand.") from exc
    errors = done.stderr.decode("utf-8", "replace")
    if "ncrypted" in errors:
        raise EncryptedDocument(
            "This Word document is password-protected; please send a copy without a "
            "password.")
    if done.returncode != 0:
        raise CorruptDocument(_CORRUPT)
    text = done.stdout.decode("utf-8", "replace")
    return Extraction(text=text, parser=Parser("antiword", antiword_version()))
