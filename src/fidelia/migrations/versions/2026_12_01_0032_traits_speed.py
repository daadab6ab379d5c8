"""traits rebuild speed (issue 10)

Reserved: no schema change yet (its owner fills it in, or it stays a no-op).

Revision ID: 20261201_0032
Revises: 20261201_0031
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "20261201_0032"
down_revision: str | None = "20261201_0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
