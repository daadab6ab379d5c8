"""intake and import speed (issue 18): rate buckets say how many tokens a take granted

Revision ID: 20261130_0027
Revises: 20261130_0026
Create Date: 2026-11-30 19:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261130_0027"
down_revision: str | None = "20261130_0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rate_buckets") as batch:
        batch.add_column(sa.Column("granted", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("rate_buckets") as batch:
        batch.drop_column("granted")
