"""analytics models: CLV fits, recommendation models (issue 15)

Revision ID: 20261130_0021
Revises: 20261130_0020
Create Date: 2026-11-30 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import fidelia.models.base

revision: str = "20261130_0021"
down_revision: str | None = "20261130_0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _at(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, fidelia.models.base.UTCDateTime(timezone=True), nullable=nullable)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.add_column("member_traits", sa.Column("p_alive", sa.Float(), nullable=True))
    op.add_column("member_traits", sa.Column("clv", sa.Numeric(14, 2), nullable=True))
    op.add_column("member_traits", sa.Column("churn_risk", sa.String(16), nullable=True))
    op.create_table(
        "clv_fits",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        _at("fitted_at"),
        _at("as_of"),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("repeat_customers", sa.Integer(), nullable=False),
        sa.Column("bgnbd", _json(), nullable=False),
        sa.Column("gamma_gamma", _json(), nullable=False),
        sa.Column("settings", _json(), nullable=False),
        sa.Column("summary", _json(), nullable=False),
        _fk("clv_fits", "programme_id", "programmes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clv_fits")),
    )
    op.create_index("ix_clv_fits_programme_id_fitted_at", "clv_fits", ["programme_id", "fitted_at"])
    op.create_table(
        "recommendation_models",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        _at("trained_at"),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("evaluation", _json(), nullable=False),
        sa.Column("settings", _json(), nullable=False),
        _fk("recommendation_models", "programme_id", "programmes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recommendation_models")),
    )
    op.create_index(
        "ix_recommendation_models_programme_id_kind",
        "recommendation_models",
        ["programme_id", "kind"],
    )
    op.create_table(
        "member_recommendations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("rank", sa.SmallInteger(), nullable=False),
        sa.Column("item", sa.String(200), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
        _fk("member_recommendations", "programme_id", "programmes"),
        _fk("member_recommendations", "member_id", "members"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_recommendations")),
    )
    op.create_index(
        "ix_member_recommendations_member_id_kind_rank",
        "member_recommendations",
        ["member_id", "kind", "rank"],
    )
    op.create_index(
        "ix_member_recommendations_programme_id_kind",
        "member_recommendations",
        ["programme_id", "kind"],
    )


def downgrade() -> None:
    op.drop_table("member_recommendations")
    op.drop_table("recommendation_models")
    op.drop_table("clv_fits")
    with op.batch_alter_table("member_traits") as batch:
        batch.drop_column("churn_risk")
        batch.drop_column("clv")
        batch.drop_column("p_alive")
