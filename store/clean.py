"""Make text fit a column on every backend: what PostgreSQL would refuse, cleaned here.

PostgreSQL refuses a NUL character in text, a lone surrogate (Python's stand-in
for an undecodable byte) and a string longer than its ``VARCHAR(n)``; SQLite takes
all three. Hostile mail has all three, so every string from a message passes
through :func:`fit` before it is written, and each change is reported so that it
can be recorded with the row (nothing is altered silently).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import String

__all__ = ["clean_text", "fit"]


def clean_text(value: str) -> str:
    """``value`` without NUL characters and with lone surrogates replaced (U+FFFD)."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return value


def fit(model: Any, values: Mapping[str, object]) -> tuple[dict[str, object], list[str]]:
    """``values`` for a row of ``model``, every string cleaned and cut to its column.

    Returns:
        The fitted values, and one note per value that had to change.
    """
    columns = model.__table__.columns
    fitted: dict[str, object] = {}
    notes: list[str] = []
    for name, value in values.items():
        if isinstance(value, str) and name in columns:
            cleaned = clean_text(value)
            if cleaned != value:
                notes.append(f"{name}: NUL or undecodable characters replaced")
            length = getattr(columns[name].type, "length", None)
            if isinstance(columns[name].type, String) and length and len(cleaned) > length:
                notes.append(f"{name}: cut from {len(cleaned):,} to {length} characters")
                cleaned = cleaned[:length]
            value = cleaned
        fitted[name] = value
    return fitted, notes
