"""What an extractor receives and returns: :class:`ExtractContext` and :class:`Extraction`.

Kept apart from :mod:`parsers.registry` so that the format modules, which the
registry imports, can import these without importing the registry back. A
container (zip, email, msg, tnef) extracts its members through
:meth:`ExtractContext.child`, which calls back into the registry through the
``recurse`` function the registry put in the context.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from parsers.errors import ParseTimeout
from parsers.result import ExtractResult, Limits, ParseStatus
from parsers.versions import Parser

__all__ = ["ExtractContext", "Extraction", "Extractor", "Recurse"]


@dataclass
class Extraction:
    """What an extractor found: its own text, child results and page count."""

    text: str = ""
    pages: int | None = None
    parts: list[ExtractResult] = field(default_factory=list)
    header: str = ""  # e.g. an email's From/Subject lines: shown, but not content
    warnings: list[str] = field(default_factory=list)
    parser: Parser | None = None  # overrides the registered parser (e.g. its version)
    engine: str = ""  # which engine(s) read a PDF: pdfium, pdfminer, tesseract
    ocr_pages: tuple[int, ...] = ()


Extractor = Callable[[bytes, "ExtractContext"], Extraction | str]
# (data, name, declared type, the child's context) -> its result: the registry's own.
Recurse = Callable[[bytes, "str | None", "str | None", "ExtractContext"], ExtractResult]


def _no_recursion(
    data: bytes, name: str | None, declared_type: str | None, ctx: ExtractContext
) -> ExtractResult:
    return ExtractResult(
        status=ParseStatus.FAILED,
        name=name,
        declared_type=declared_type,
        message="Not read: this context was made without a registry to read members.",
    )


@dataclass
class ExtractContext:
    """Limits, nesting depth and deadline for one extraction and its children."""

    limits: Limits
    depth: int = 0
    deadline: float = float("inf")
    budget: list[int] = field(default_factory=lambda: [0])  # members left, shared
    recurse: Recurse = _no_recursion

    def check_time(self, done: str = "") -> None:
        """Raise :class:`ParseTimeout` once the soft deadline has passed."""
        if time.monotonic() > self.deadline:
            raise ParseTimeout(
                f"Reading this file took longer than {self.limits.parse_timeout_s:g} s "
                f"and was stopped{done}; staff will look at it by hand."
            )

    def child(
        self, data: bytes, name: str | None, declared_type: str | None = None
    ) -> ExtractResult:
        """Extract a member of a container (attachment, archive member) recursively."""
        if self.budget[0] <= 0:
            return ExtractResult(
                status=ParseStatus.TOO_LARGE,
                name=name,
                declared_type=declared_type,
                message=f"Skipped: the container holds more than "
                f"{self.limits.max_archive_members} files in all.",
            )
        self.budget[0] -= 1
        sub = ExtractContext(self.limits, self.depth + 1, self.deadline, self.budget, self.recurse)
        return self.recurse(data, name, declared_type, sub)
