"""bounces and batched delivery (issue 11)

Revision ID: 20261130_0025
Revises: 20261130_0024
Create Date: 2026-11-30 19:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import fidelia.models.base

revision: str = "20261130_0025"
down_revision: str | None = "20261130_0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bounced_addresses",
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("bounced_at", fidelia.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_bounced_addresses_programme_id_programmes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_bounced_addresses_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("programme_id", "address", name=op.f("pk_bounced_addresses")),
    )


def downgrade() -> None:
    op.drop_table("bounced_addresses")
