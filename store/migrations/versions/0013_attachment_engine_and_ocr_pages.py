"""which engine read each attachment, and which pages were OCRed

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attachments") as batch:
        batch.add_column(sa.Column("engine", sa.String(40), nullable=True))
        batch.add_column(sa.Column("ocr_pages", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attachments") as batch:
        batch.drop_column("ocr_pages")
        batch.drop_column("engine")
