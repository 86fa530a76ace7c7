"""A base for the test servers: ``with Server() as s`` starts it and stops it after."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class StartStop:
    """Context-manager protocol for servers with ``start() -> self`` and ``stop()``."""

    def start(self) -> Self:  # pragma: no cover - every server defines it
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - every server defines it
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
