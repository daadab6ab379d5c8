"""analytics: anonymous purchases, KPI aggregates (issue 15)

Revision ID: 20261130_0015
Revises: 20261130_0014
Create Date: 2026-11-30 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fidelia.models.base

revision: str = "20261130_0015"
down_revision: str | None = "20261130_0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = fidelia.models.base.UTCDateTime(timezone=True)


def _programme_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["programme_id"],
        ["programmes.id"],
        name=op.f(f"fk_{table}_programme_id_programmes"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "anonymous_purchases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", UTC, nullable=False),
        sa.Column("received_at", UTC, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("store", sa.String(length=64), nullable=True),
        sa.Column("order_id", sa.String(length=100), nullable=False),
        sa.Column("total_cents", BIG, nullable=False),
        sa.Column("properties", fidelia.models.base.JSONType, nullable=False),
        _programme_fk("anonymous_purchases"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anonymous_purchases")),
        sa.UniqueConstraint(
            "programme_id",
            "idempotency_key",
            name=op.f("uq_anonymous_purchases_programme_id_idempotency_key"),
        ),
        sa.UniqueConstraint(
            "programme_id", "order_id", name=op.f("uq_anonymous_purchases_programme_id_order_id")
        ),
    )
    op.create_index(
        "ix_anonymous_purchases_programme_id_received_at",
        "anonymous_purchases",
        ["programme_id", "received_at"],
    )
    op.create_table(
        "analytics_daily_sales",
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("store", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("member", sa.Boolean(), nullable=False),
        sa.Column("orders", BIG, nullable=False),
        sa.Column("sales_cents", BIG, nullable=False),
        _programme_fk("analytics_daily_sales"),
        sa.PrimaryKeyConstraint(
            "programme_id",
            "day",
            "store",
            "channel",
            "member",
            name=op.f("pk_analytics_daily_sales"),
        ),
    )
    op.create_table(
        "analytics_member_months",
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("orders", BIG, nullable=False),
        sa.Column("sales_cents", BIG, nullable=False),
        _programme_fk("analytics_member_months"),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_analytics_member_months_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "programme_id", "member_id", "month", name=op.f("pk_analytics_member_months")
        ),
    )
    op.create_index(
        "ix_analytics_member_months_programme_id_month",
        "analytics_member_months",
        ["programme_id", "month"],
    )
    op.create_table(
        "analytics_state",
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("refreshed_to", UTC, nullable=True),
        sa.Column("refreshed_at", UTC, nullable=True),
        _programme_fk("analytics_state"),
        sa.PrimaryKeyConstraint("programme_id", name=op.f("pk_analytics_state")),
    )
    # the incremental refresh reads the events received since its watermark
    op.create_index("ix_events_programme_id_received_at", "events", ["programme_id", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_events_programme_id_received_at", table_name="events")
    op.drop_table("analytics_state")
    op.drop_index(
        "ix_analytics_member_months_programme_id_month", table_name="analytics_member_months"
    )
    op.drop_table("analytics_member_months")
    op.drop_table("analytics_daily_sales")
    op.drop_index(
        "ix_anonymous_purchases_programme_id_received_at", table_name="anonymous_purchases"
    )
    op.drop_table("anonymous_purchases")
