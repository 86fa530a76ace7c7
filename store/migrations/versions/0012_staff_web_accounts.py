"""staff web view: accounts, sign-in attempts, private notes, generated keys

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_submissions_kind_received", "submissions", ["kind", "received_at", "id"])
    op.create_index(
        "ix_submissions_web_counts",
        "submissions",
        ["kind", "timeliness", "status", "ack_status", "sent_in_time"],
    )
    op.create_index(
        "ix_submissions_sent_in_time",
        "submissions",
        ["id"],
        sqlite_where=sa.text("sent_in_time IS 1"),
        postgresql_where=sa.text("sent_in_time IS true"),
    )
    op.create_index(
        "ix_attachments_status_submission", "attachments", ["parse_status", "submission_id"]
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("session_epoch", sa.Integer(), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("address", sa.String(length=100), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempts")),
    )
    op.create_index("ix_login_attempts_email_at", "login_attempts", ["email", "at"])
    op.create_index("ix_login_attempts_address_at", "login_attempts", ["address", "at"])
    op.create_table(
        "notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=320), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_notes_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notes")),
    )
    op.create_index(op.f("ix_notes_submission_id"), "notes", ["submission_id"])
    op.create_table(
        "web_keys",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_web_keys")),
    )


def downgrade() -> None:
    op.drop_table("web_keys")
    op.drop_index(op.f("ix_notes_submission_id"), table_name="notes")
    op.drop_table("notes")
    op.drop_index("ix_login_attempts_address_at", table_name="login_attempts")
    op.drop_index("ix_login_attempts_email_at", table_name="login_attempts")
    op.drop_table("login_attempts")
    op.drop_table("users")
    op.drop_index("ix_attachments_status_submission", table_name="attachments")
    op.drop_index("ix_submissions_sent_in_time", table_name="submissions")
    op.drop_index("ix_submissions_web_counts", table_name="submissions")
    op.drop_index("ix_submissions_kind_received", table_name="submissions")
