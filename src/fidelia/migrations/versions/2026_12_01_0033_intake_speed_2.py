"""hot path, second part (issue 18): stocked voucher codes claimed in order from the index

A claim takes the first available codes of a pool by id (``ORDER BY id LIMIT n``). With the
index on ``(pool_id, status)`` alone, both databases read and sorted every available code of
the pool for each claim: a pool stocked with a million imported codes sorted a million rows
per voucher issued. The index gains ``id`` so that the claim reads its n codes in order.

Revision ID: 20261201_0033
Revises: 20261201_0032
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "20261201_0033"
down_revision: str | None = "20261201_0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_vouchers_pool_id_status", table_name="vouchers")
    op.create_index("ix_vouchers_pool_id_status_id", "vouchers", ["pool_id", "status", "id"])


def downgrade() -> None:
    op.drop_index("ix_vouchers_pool_id_status_id", table_name="vouchers")
    op.create_index("ix_vouchers_pool_id_status", "vouchers", ["pool_id", "status"])
