"""Time the program as it runs when installed: with its bytecode compiled.

``pip install .`` (and ``make install``) writes each module's bytecode at install
time. An editable checkout does not, and where ``PYTHONDONTWRITEBYTECODE`` is set
(as on the machines the figures in RESULTS.md come from) Python never caches it
either, so every ``intake`` process would compile the program's own ~70 modules
again: about 0.15 s of start-up that no installed copy pays. Benchmarks that time
``intake`` commands call :func:`compile_program` first. Python checks each cached
file against its source's size and time, so an edited module is never run stale.
"""

from __future__ import annotations

import compileall
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("intake", "parsers", "store")


def compile_program(root: Path = REPO) -> None:
    """Write the bytecode of the program's packages under ``root``, as an install would."""
    for package in PACKAGES:
        if not compileall.compile_dir(root / package, quiet=1):
            raise RuntimeError(f"could not compile {package}/")


if __name__ == "__main__":  # `make setup`
    compile_program()
