"""passages, their question tags, and respondent types

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "passages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("source_name", sa.String(length=500), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("heading", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_passages_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passages")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_passages_submission_seq", "passages", ["submission_id", "seq"])
    op.create_table(
        "passage_tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("passage_id", sa.Integer(), nullable=False),
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("question_key", sa.String(length=40), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("decision", sa.String(length=10), nullable=False),
        sa.Column("set_by", sa.String(length=200), nullable=True),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["passage_id"],
            ["passages.id"],
            name=op.f("fk_passage_tags_passage_id_passages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_passage_tags_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passage_tags")),
        sa.UniqueConstraint("passage_id", "question_key", name="uq_passage_tags_passage_question"),
    )
    op.create_index("ix_passage_tags_question_key", "passage_tags", ["question_key"])
    op.create_index(op.f("ix_passage_tags_submission_id"), "passage_tags", ["submission_id"])
    op.create_table(
        "respondents",
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("respondent_type", sa.String(length=30), nullable=False),
        sa.Column("type_source", sa.String(length=10), nullable=False),
        sa.Column("organisation", sa.String(length=300), nullable=False),
        sa.Column("organisation_source", sa.String(length=10), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("set_by", sa.String(length=200), nullable=True),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_respondents_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("submission_id", name=op.f("pk_respondents")),
    )
    op.create_index("ix_respondents_type", "respondents", ["respondent_type"])


def downgrade() -> None:
    op.drop_index("ix_respondents_type", table_name="respondents")
    op.drop_table("respondents")
    op.drop_index(op.f("ix_passage_tags_submission_id"), table_name="passage_tags")
    op.drop_index("ix_passage_tags_question_key", table_name="passage_tags")
    op.drop_table("passage_tags")
    op.drop_index("ix_passages_submission_seq", table_name="passages")
    op.drop_table("passages")
