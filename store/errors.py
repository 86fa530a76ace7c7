"""Errors raised by the ``store`` package.

::

    StoreError
    ├── NotFound             no submission has the reference asked for
    ├── SchemaOutOfDate      the database needs ``intake db upgrade``
    └── DatabaseUnavailable  the database cannot be opened (server down, folder
        │                    missing, unknown driver, refused sign-in)
        └── DatabaseMissing  a read-only command found no database file
"""

from __future__ import annotations

__all__ = [
    "DatabaseMissing",
    "DatabaseUnavailable",
    "NotFound",
    "SchemaOutOfDate",
    "StoreError",
]


class StoreError(Exception):
    """Root of every error this package raises on purpose."""


class NotFound(StoreError):
    """Raised when a reference or id names no stored submission."""


class SchemaOutOfDate(StoreError):
    """Raised when the database schema is older than this version of the program."""


class DatabaseUnavailable(StoreError):
    """Raised when the database cannot be reached or opened."""


class DatabaseMissing(DatabaseUnavailable):
    """Raised when a command that only reads finds no SQLite file to read."""
