"""Errors raised by the ``store`` package.

::

    StoreError
    ├── NotFound             no submission has the reference asked for
    └── SchemaOutOfDate      the database needs ``intake db upgrade``
"""

from __future__ import annotations

__all__ = ["NotFound", "SchemaOutOfDate", "StoreError"]


class StoreError(Exception):
    """Root of every error this package raises on purpose."""


class NotFound(StoreError):
    """Raised when a reference or id names no stored submission."""


class SchemaOutOfDate(StoreError):
    """Raised when the database schema is older than this version of the program."""
