"""campaigns, their members, staff pins, revised versions and LSH band keys

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        sa.Column("template_submission_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["template_submission_id"],
            ["submissions.id"],
            name=op.f("fk_campaigns_template_submission_id_submissions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    op.create_table(
        "campaign_members",
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=30), nullable=False),
        sa.Column("containment", sa.Float(), nullable=False),
        sa.Column("additions", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_campaign_members_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_members_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("submission_id", name=op.f("pk_campaign_members")),
    )
    op.create_index(
        "ix_campaign_members_campaign_id", "campaign_members", ["campaign_id"], unique=False
    )
    op.create_table(
        "campaign_pins",
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("pinned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_campaign_pins_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_pins_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("submission_id", name=op.f("pk_campaign_pins")),
    )
    op.create_index("ix_campaign_pins_campaign_id", "campaign_pins", ["campaign_id"], unique=False)
    op.create_table(
        "submission_versions",
        sa.Column("earlier_id", sa.Integer(), nullable=False),
        sa.Column("later_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["earlier_id"],
            ["submissions.id"],
            name=op.f("fk_submission_versions_earlier_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["later_id"],
            ["submissions.id"],
            name=op.f("fk_submission_versions_later_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("earlier_id", name=op.f("pk_submission_versions")),
    )
    op.create_index(
        "ix_submission_versions_later_id", "submission_versions", ["later_id"], unique=False
    )
    op.create_table(
        "text_bands",
        sa.Column("submission_id", sa.Integer(), nullable=False),
        sa.Column("band", sa.SmallInteger(), nullable=False),
        sa.Column("band_key", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_text_bands_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("submission_id", "band", name=op.f("pk_text_bands")),
    )
    op.create_index("ix_text_bands_band_key", "text_bands", ["band_key"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_text_bands_band_key", table_name="text_bands")
    op.drop_table("text_bands")
    op.drop_index("ix_submission_versions_later_id", table_name="submission_versions")
    op.drop_table("submission_versions")
    op.drop_index("ix_campaign_pins_campaign_id", table_name="campaign_pins")
    op.drop_table("campaign_pins")
    op.drop_index("ix_campaign_members_campaign_id", table_name="campaign_members")
    op.drop_table("campaign_members")
    op.drop_table("campaigns")
