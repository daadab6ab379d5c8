"""KPI aggregates at scale, tiers over time (issue 15)

Per-member activity (bitmaps of the months with a purchase, first purchase after enrolment) so
that buying members, repeat members and activation are one scan of one row per member; returns
and refunds in the daily sales. The aggregates are rebuilt by the next refresh (the watermark is
cleared).

Revision ID: 20261130_0024
Revises: 20261130_0023
Create Date: 2026-11-30 19:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fidelia.models.base

revision: str = "20261130_0024"
down_revision: str | None = "20261130_0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = fidelia.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("analytics_daily_sales") as batch:
        batch.add_column(sa.Column("returns", BIG, nullable=False, server_default="0"))
        batch.add_column(sa.Column("refund_cents", BIG, nullable=False, server_default="0"))
    with op.batch_alter_table("analytics_state") as batch:
        batch.add_column(sa.Column("mask_base", sa.Date(), nullable=True))
    op.create_table(
        "analytics_member_activity",
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("enrolled_at", UTC, nullable=False),
        sa.Column("activated_at", UTC, nullable=True),
        sa.Column("months", BIG, nullable=False),
        sa.Column("multi", BIG, nullable=False),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_analytics_member_activity_programme_id_programmes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_analytics_member_activity_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_analytics_member_activity")),
    )
    op.create_index(
        "ix_analytics_member_activity_programme_id_enrolled_at",
        "analytics_member_activity",
        ["programme_id", "enrolled_at"],
    )
    op.execute("UPDATE analytics_state SET refreshed_to = NULL")  # rebuilt by the next refresh


def downgrade() -> None:
    op.drop_index(
        "ix_analytics_member_activity_programme_id_enrolled_at",
        table_name="analytics_member_activity",
    )
    op.drop_table("analytics_member_activity")
    with op.batch_alter_table("analytics_state") as batch:
        batch.drop_column("mask_base")
    with op.batch_alter_table("analytics_daily_sales") as batch:
        batch.drop_column("refund_cents")
        batch.drop_column("returns")
    op.execute("UPDATE analytics_state SET refreshed_to = NULL")
