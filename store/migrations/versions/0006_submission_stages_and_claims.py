"""stage records per submission; claims on outbox rows and digests

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "submission_stages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_submission_stages_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submission_stages")),
        sa.UniqueConstraint("submission_id", "stage", name="uq_submission_stages_submission_stage"),
    )
    op.create_index(
        "ix_submission_stages_stage_state",
        "submission_stages",
        ["stage", "state", "submission_id"],
        unique=False,
    )
    op.create_index(
        "ix_submission_stages_submission_id", "submission_stages", ["submission_id"], unique=False
    )
    op.create_table(
        "unfetched_uids",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox", sa.String(length=500), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_tried", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unfetched_uids")),
        sa.UniqueConstraint("mailbox", "uidvalidity", "uid", name="uq_unfetched_uids_mailbox_uid"),
    )
    with op.batch_alter_table("acks") as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("digests") as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
    # Submissions stored before this version: what is unread is due for "read"; what
    # is read gets its "read" (and, when decided, "ack") recorded as done.
    bind = op.get_bind()
    now = sa.func.current_timestamp()
    stages = sa.table(
        "submission_stages",
        sa.column("submission_id", sa.Integer()),
        sa.column("stage", sa.String()),
        sa.column("state", sa.String()),
        sa.column("attempts", sa.Integer()),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    subs = sa.table(
        "submissions",
        sa.column("id", sa.Integer()),
        sa.column("status", sa.String()),
        sa.column("ack_status", sa.String()),
    )
    read_state = sa.case((subs.c.status == "received", "due"), else_="done")
    bind.execute(
        stages.insert().from_select(
            ["submission_id", "stage", "state", "attempts", "updated_at"],
            sa.select(subs.c.id, sa.literal("read"), read_state, sa.literal(0), now).where(
                subs.c.status != "purged"
            ),
        )
    )
    bind.execute(
        stages.insert().from_select(
            ["submission_id", "stage", "state", "attempts", "updated_at"],
            sa.select(subs.c.id, sa.literal("ack"), sa.literal("done"), sa.literal(0), now).where(
                subs.c.ack_status != "none"
            ),
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("digests") as batch_op:
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("claimed_by")
    with op.batch_alter_table("acks") as batch_op:
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("claimed_by")
    op.drop_table("unfetched_uids")
    op.drop_index("ix_submission_stages_submission_id", table_name="submission_stages")
    op.drop_index("ix_submission_stages_stage_state", table_name="submission_stages")
    op.drop_table("submission_stages")
