"""parts of a message skipped on purpose, with their reason

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "skipped_parts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("content_type", sa.String(length=200), nullable=False),
        sa.Column("filename", sa.String(length=500), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_skipped_parts_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_skipped_parts")),
        sa.UniqueConstraint(
            "submission_id", "position", name="uq_skipped_parts_submission_position"
        ),
    )
    op.create_index(
        op.f("ix_skipped_parts_submission_id"), "skipped_parts", ["submission_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_skipped_parts_submission_id"), table_name="skipped_parts")
    op.drop_table("skipped_parts")
