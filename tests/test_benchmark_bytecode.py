"""The benchmarks time the program as an installed copy runs: with its bytecode written."""

from __future__ import annotations

import importlib.util
import shutil
import struct
from pathlib import Path

from benchmarks.installed import PACKAGES, compile_program
from tests.conftest import ROOT


def test_benchmarks_write_the_program_bytecode_current_with_its_source(tmp_path: Path) -> None:
    """`compile_program` writes, for every module of intake/, parsers/ and store/, the
    bytecode Python loads instead of compiling the source (stamped with the source's
    time and size, so that an edited module is never run stale)."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    sources = sorted(tmp_path.glob("*/**/*.py"))
    assert len(sources) > 50
    compile_program(tmp_path)
    for source in sources:
        cached = Path(importlib.util.cache_from_source(str(source)))
        header = cached.read_bytes()[:16]
        magic, flags, mtime, size = header[:4], *struct.unpack("<III", header[4:])
        stat = source.stat()
        assert (magic, flags) == (importlib.util.MAGIC_NUMBER, 0), source
        assert (mtime, size) == (int(stat.st_mtime) & 0xFFFFFFFF, stat.st_size & 0xFFFFFFFF)
