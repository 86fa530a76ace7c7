"""index for sightings not yet flagged on the server

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Partial, and written "flagged IS false", so that SQLite uses it too.
    op.create_index(
        "ix_sightings_unflagged",
        "sightings",
        ["mailbox", "uidvalidity", "uid"],
        unique=False,
        sqlite_where=sa.text("flagged IS 0"),
        postgresql_where=sa.text("flagged IS false"),
    )


def downgrade() -> None:
    op.drop_index("ix_sightings_unflagged", table_name="sightings")
