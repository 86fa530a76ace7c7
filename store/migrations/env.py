"""Alembic environment: runs migrations on the engine the program hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from store.models import Base

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):  # pragma: no cover - alembic CLI without the program
    raise RuntimeError("run migrations through `intake db upgrade`")

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
