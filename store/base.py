"""The declarative base every table derives from, its naming convention, and the
column type of every timestamp. Nothing else: the tables live in :mod:`store.models`
and one module per later concern, and ``store/__init__`` imports them all, so the
metadata Alembic and ``create_all`` see is complete whichever module is named first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import DateTime, Index, MetaData, text
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

__all__ = ["NAMING", "Base", "UTCDateTime", "chunks", "partial_index", "use_dialect"]


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware UTC datetime on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: object) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use aware UTC")
        return value.astimezone(dt.UTC)

    def process_result_value(
        self, value: dt.datetime | None, dialect: object
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def partial_index(name: str, *columns: Any, where: dict[str, str]) -> Index:
    """An index of only the rows where a condition holds, the condition written for
    each database: ``where={"sqlite": ..., "postgresql": ...}``.

    The condition joins the index when a database of its kind is opened
    (:func:`use_dialect`), not here: naming ``postgresql_where`` at import loads
    SQLAlchemy's whole PostgreSQL dialect, about 70 ms of every command's start-up,
    on SQLite too. The migrations create these indexes with the same conditions.
    """
    return Index(name, *columns, info={"where": where})


def use_dialect(dialect: str) -> None:
    """Give each partial index its condition for ``dialect`` (harmless again).

    Every table is in the metadata by then: ``store/__init__`` imports them all.
    """
    for table in Base.metadata.tables.values():
        for index in table.indexes:
            condition = index.info.get("where", {}).get(dialect)
            if condition is not None:
                index.dialect_options[dialect]["where"] = text(condition)


def chunks(ids: Sequence[int], size: int = 500) -> Iterator[list[int]]:
    """``ids`` in lists of at most ``size``: what one ``IN (...)`` of a query may hold."""
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])
