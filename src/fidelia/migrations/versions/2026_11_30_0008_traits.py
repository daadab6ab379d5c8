"""traits: computed member traits (``member_traits``, one row per member)

Revision ID: 20261130_0008
Revises: 20261130_0007
Create Date: 2026-11-30 11:30:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import fidelia.models.base

revision: str = "20261130_0008"
down_revision: str | None = "20261130_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "member_traits"
INDEXES = {
    "ix_member_traits_programme_id_rfm_cell": ["programme_id", "rfm_cell"],
    "ix_member_traits_programme_id_lifecycle_stage": ["programme_id", "lifecycle_stage"],
    "ix_member_traits_programme_id_last_purchase_at": ["programme_id", "last_purchase_at"],
}


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _at(name: str, *, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, fidelia.models.base.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    money = sa.Numeric(precision=14, scale=2)
    op.create_table(
        TABLE,
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        _at("first_purchase_at"),
        _at("last_purchase_at"),
        sa.Column("purchases_count", sa.Integer(), nullable=False),
        sa.Column("spend_total", money, nullable=False),
        sa.Column("average_basket", money, nullable=True),
        sa.Column("interval_mean_days", sa.Float(), nullable=True),
        sa.Column("interval_median_days", sa.Float(), nullable=True),
        sa.Column("last_interval_days", sa.Float(), nullable=True),
        _at("expected_next_purchase_at"),
        sa.Column("rfm_r", sa.SmallInteger(), nullable=True),
        sa.Column("rfm_f", sa.SmallInteger(), nullable=True),
        sa.Column("rfm_m", sa.SmallInteger(), nullable=True),
        sa.Column("rfm_cell", sa.String(length=64), nullable=True),
        sa.Column("lifecycle_stage", sa.String(length=64), nullable=True),
        sa.Column("promo_purchases", sa.Integer(), nullable=False),
        sa.Column("promo_spend", money, nullable=False),
        sa.Column("promo_purchases_share", sa.Float(), nullable=True),
        sa.Column("promo_spend_share", sa.Float(), nullable=True),
        sa.Column("favourite_store", sa.String(length=64), nullable=True),
        sa.Column("favourite_channel", sa.String(length=16), nullable=True),
        _at("last_redemption_at"),
        sa.Column("windows", _json(), nullable=False),
        sa.Column("windows_on", sa.Date(), nullable=True),
        sa.Column("days", _json(), nullable=False),
        sa.Column("purchase_times", _json(), nullable=False),
        sa.Column("affinities", _json(), nullable=False),
        sa.Column("channels", _json(), nullable=False),
        sa.Column("stores", _json(), nullable=False),
        _at("computed_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_member_traits_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_member_traits_programme_id_programmes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_member_traits")),
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        for name, columns in INDEXES.items():
            batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        for name in INDEXES:
            batch_op.drop_index(name)
    op.drop_table(TABLE)
