"""acknowledgement outbox

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "acks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("to_addr", sa.String(length=320), nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("requested_by", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_acks_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acks")),
        sa.UniqueConstraint("message_id", name=op.f("uq_acks_message_id")),
        sa.UniqueConstraint("submission_id", "sequence", name="uq_acks_submission_sequence"),
    )
    with op.batch_alter_table("acks", schema=None) as batch_op:
        batch_op.create_index("ix_acks_status_next", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_acks_to_created", ["to_addr", "created_at"], unique=False)

    # SQLite rebuilds the table here; keep AUTOINCREMENT so ids are never reused.
    with op.batch_alter_table(
        "submissions", schema=None, table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=20), nullable=False))
        batch_op.add_column(sa.Column("bounced_ack_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_submissions_kind", ["kind"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_submissions_bounced_ack_id_acks"),
            "acks",
            ["bounced_ack_id"],
            ["id"],
            use_alter=True,
        )


def downgrade() -> None:
    # SQLite rebuilds the table here; keep AUTOINCREMENT so ids are never reused.
    with op.batch_alter_table(
        "submissions", schema=None, table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_submissions_bounced_ack_id_acks"), type_="foreignkey"
        )
        batch_op.drop_index("ix_submissions_kind")
        batch_op.drop_column("bounced_ack_id")
        batch_op.drop_column("kind")

    with op.batch_alter_table("acks", schema=None) as batch_op:
        batch_op.drop_index("ix_acks_to_created")
        batch_op.drop_index("ix_acks_status_next")

    op.drop_table("acks")
