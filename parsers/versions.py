"""Name and version of the library or program behind each extractor."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import NamedTuple

__all__ = ["Parser", "package_parser", "stdlib_parser"]


class Parser(NamedTuple):
    """Which parser produced a result, recorded with every ExtractResult."""

    name: str
    version: str


def package_parser(distribution: str, name: str | None = None) -> Parser:
    """Parser named after an installed distribution, with its installed version."""
    try:
        version = metadata.version(distribution)
    except metadata.PackageNotFoundError:
        version = "unknown"
    return Parser(name or distribution, version)


def stdlib_parser(name: str) -> Parser:
    """Parser built on the standard library: versioned by the Python release."""
    return Parser(name, f"python {platform.python_version()}")
